"""Stage `deploy`: every trained run in ONNX Runtime, fp32 and int8, checked and timed."""

import shutil
import tempfile

from mobilenet_study import deploy
from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import PREPARED_DIR, load_split
from mobilenet_study.grid import Grid
from mobilenet_study.outputs import atomic_dir, write_json
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.training.outputs import RunPaths, load_trained, write_predictions
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
    test_images, test_labels = load_subset(PREPARED_DIR, "test", recipe.test_subset)
    train_images, train_labels = load_split(PREPARED_DIR, "train")
    calibration = train_images[
        # Class-balanced and seeded, as the training subsets are.
        stratified_subset(train_labels, config.calibration_images, config.seed)
    ]

    # The folder appears complete, or not at all: a run that fails to export or to match
    # stops the stage with its name, and nothing is written.
    with atomic_dir(deploy.DEPLOYED_DIR) as folder, tempfile.TemporaryDirectory() as scratch:
        for run in runs:
            print(f"deploying {run.name}", flush=True)
            trained = load_trained(RunPaths.for_run(run.name).model, len(CLASSES))
            built = deploy.paths_for(run.name, scratch)
            built["fp32"].parent.mkdir(parents=True)
            result = deploy.deploy_run(
                run.name,
                trained,
                test_images,
                test_labels,
                calibration,
                config,
                built["fp32"],
                built["int8"],
            )
            outputs = deploy.paths_for(run.name, folder)
            outputs["fp32"].parent.mkdir(parents=True)
            for name in ("fp32", "int8"):
                shutil.copyfile(built[name], outputs[name])
            write_predictions(outputs["predictions"], test_labels, result.int8_predictions, CLASSES)
            write_json(outputs["summary"], result.summary(config))


if __name__ == "__main__":
    run_stage(main)
