"""Stage `train@<model>-<α>-<ρ>-<seed>`: train one run; write its model, metrics and curves."""

import argparse

from mobilenet_study import data, train
from mobilenet_study.grid import Grid
from mobilenet_study.models import build
from mobilenet_study.models.counting import measured_cost
from mobilenet_study.outputs import write_json
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # As DVC's matrix renders them, so that the run's name is the stage's: train@<run>.
    parser.add_argument("model")
    parser.add_argument("width")
    parser.add_argument("resolution")
    parser.add_argument("seed")
    args = parser.parse_args()

    params = load_params()
    config = train.TrainParams.from_params(params)
    run = Grid.from_params(params).find(f"{args.model}-{args.width}-{args.resolution}-{args.seed}")
    paths = train.RunPaths.for_run(run.name)

    device = train.resolve_device(config.device)
    train.seed_everything(run.seed, device)
    dataset = train.load_dataset(data.PREPARED_DIR, config, run, device)
    model = build(run.model, run.width, num_classes=len(data.CLASSES))
    cost = measured_cost(model, run.input_size)

    with train.CurveLogger(paths.curves) as curves:
        result = train.train(
            model,
            dataset.train,
            dataset.test,
            dataset.preprocess,
            config,
            seed=run.seed,
            checkpoint=paths.checkpoint,
            checkpoint_key=train.checkpoint_key(config, run, dataset.content_hash, device),
            on_epoch=curves.log,
        )
    train.write_predictions(
        paths.predictions, dataset.test.labels, result.test_predictions, data.CLASSES
    )
    train.save_model(paths.model, result.model, run, dataset.preprocess)
    write_json(
        paths.metrics,
        train.run_metrics(
            run,
            config,
            result,
            params_count=cost.params,
            macs=cost.macs,
            device=device,
        ),
    )
    paths.checkpoint.unlink(missing_ok=True)


if __name__ == "__main__":
    run_stage(main)
