"""Stage `train@<model>-<α>-<ρ>-<seed>`: train one run; write its model, metrics and curves."""

import argparse

from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.files import write_json
from mobilenet_study.grid import Grid
from mobilenet_study.layout import PREPARED, RunPaths
from mobilenet_study.models import build
from mobilenet_study.models.counting import measured_cost
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.training.artifacts import (
    CurveLogger,
    run_metrics,
    save_model,
    write_predictions,
)
from mobilenet_study.training.checkpoint import checkpoint_key
from mobilenet_study.training.loop import train
from mobilenet_study.training.pipeline import load_dataset
from mobilenet_study.training.recipe import TrainParams, resolve_device, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # As DVC's matrix renders them, so that the run's name is the stage's: train@<run>.
    parser.add_argument("model")
    parser.add_argument("width")
    parser.add_argument("resolution")
    parser.add_argument("seed")
    args = parser.parse_args()

    params = load_params()
    config = TrainParams.from_params(params)
    run = Grid.from_params(params).find(f"{args.model}-{args.width}-{args.resolution}-{args.seed}")
    paths = RunPaths.for_run(run.name)

    device = resolve_device(config.device)
    seed_everything(run.seed)
    dataset = load_dataset(PREPARED, config, run, device)
    model = build(run.model, run.width, num_classes=len(CLASSES))
    cost = measured_cost(model, run.input_size)

    with CurveLogger(paths.curves) as curves:
        result = train(
            model,
            dataset.train,
            dataset.test,
            dataset.preprocess,
            config,
            seed=run.seed,
            checkpoint=paths.checkpoint,
            checkpoint_key=checkpoint_key(config, run, dataset.content_hash, device),
            progress_file=paths.progress,
            on_epoch=curves.log,
        )
    write_predictions(paths.predictions, dataset.test.labels, result.test_predictions, CLASSES)
    save_model(paths.model, result.model, run, dataset.preprocess)
    write_json(
        paths.metrics,
        run_metrics(
            run,
            config,
            result,
            params_count=cost.params,
            macs=cost.macs,
            device=device,
            evaluated_on=dataset.evaluated_on,
        ),
    )
    paths.checkpoint.unlink(missing_ok=True)
    paths.progress.unlink(missing_ok=True)


if __name__ == "__main__":
    run_stage(main)
