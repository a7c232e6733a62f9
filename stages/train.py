"""Stage `train@<model>-<α>-<ρ>`: train one grid point and write its model, metrics and curves."""

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
    args = parser.parse_args()

    params = load_params()
    config = train.TrainParams.from_params(params)
    point = Grid.from_params(params).find(f"{args.model}-{args.width}-{args.resolution}")
    run = train.RunPaths.for_run(point.name)

    device = train.resolve_device(config.device)
    train.seed_everything(config.seed, device)
    dataset = train.load_dataset(data.PREPARED_DIR, data.METRICS_FILE, config, point, device)
    model = build(point.model, point.width, num_classes=len(data.CLASSES))
    cost = measured_cost(model, point.input_size)

    with train.CurveLogger(run.curves) as curves:
        result = train.train(
            model,
            dataset.train,
            dataset.test,
            dataset.preprocess,
            config,
            checkpoint=run.checkpoint,
            checkpoint_key=train.checkpoint_key(config, point, dataset.content_hash, device),
            on_epoch=curves.log,
        )
    train.write_predictions(
        run.predictions, dataset.test.labels, result.test_predictions, data.CLASSES
    )
    train.save_model(run.model, result.model, point, dataset.preprocess)
    write_json(
        run.metrics,
        train.run_metrics(
            point,
            config,
            result,
            params_count=cost.params,
            macs=cost.macs,
            device=device,
            data_source_kind=dataset.source_kind,
        ),
    )
    run.checkpoint.unlink(missing_ok=True)


if __name__ == "__main__":
    run_stage(main)
