"""Stage `deploy`: every trained run in ONNX Runtime, fp32 and int8, checked and timed."""

import shutil
import tempfile

from mobilenet_study import deploy
from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import load_split
from mobilenet_study.files import atomic_dir, write_json
from mobilenet_study.grid import Grid
from mobilenet_study.layout import DEPLOYED, PREPARED, DeployedPaths, RunPaths
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.training.artifacts import load_trained, write_predictions
from mobilenet_study.training.pipeline import load_subset, stratified_subset
from mobilenet_study.training.recipe import TrainParams


def main() -> None:
    params = load_params()
    config = deploy.DeployParams.from_params(params)
    recipe = TrainParams.from_params(params)
    runs = Grid.from_params(params).runs
    # Every run must be trained before any work: a missing one is named with its stage.
    for run in runs:
        if not RunPaths.for_run(run.name).model.is_file():
            raise StudyError(f"{run.name} is not trained: run `dvc repro {run.stage}` first")
    test_images, test_labels = load_subset(PREPARED, "test", recipe.test_subset)
    train_images, train_labels = load_split(PREPARED, "train")
    calibration = train_images[
        # Class-balanced and seeded, as the training subsets are.
        stratified_subset(train_labels, config.calibration_images, config.seed)
    ]

    # The folder appears complete, or not at all: a run that fails to export or to match
    # stops the stage with its name, and nothing is written.
    with atomic_dir(DEPLOYED) as folder, tempfile.TemporaryDirectory() as scratch:
        for run in runs:
            print(f"deploying {run.name}", flush=True)
            trained = load_trained(RunPaths.for_run(run.name).model, len(CLASSES))
            built = DeployedPaths.for_run(run.name, scratch)
            built.fp32.parent.mkdir(parents=True)
            result = deploy.deploy_run(
                run.name,
                trained,
                test_images,
                test_labels,
                calibration,
                config,
                built.fp32,
                built.int8,
            )
            outputs = DeployedPaths.for_run(run.name, folder)
            outputs.fp32.parent.mkdir(parents=True)
            shutil.copyfile(built.fp32, outputs.fp32)
            shutil.copyfile(built.int8, outputs.int8)
            write_predictions(outputs.predictions, test_labels, result.int8_predictions, CLASSES)
            write_json(outputs.summary, result.summary(config))


if __name__ == "__main__":
    run_stage(main)
