"""Stage `gradcam@<run>`: Grad-CAM of one trained run on a fixed, seeded set of test images."""

import argparse

from mobilenet_study import gradcam
from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import load_split, read_summary
from mobilenet_study.files import save_figure
from mobilenet_study.layout import DATA_METRICS, GRADCAM_PLOTS, PREPARED, RunPaths
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.training.artifacts import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", help="a run named in gradcam.runs, e.g. mobilenet_v1-1.0-1.0")
    args = parser.parse_args()

    config = gradcam.GradCamParams.from_params(load_params())
    if args.run not in config.runs:
        raise StudyError(f"{args.run!r} is not in gradcam.runs ({', '.join(config.runs)})")
    summary = read_summary(DATA_METRICS)
    images, labels = load_split(PREPARED, "test")
    picks = gradcam.select_images(labels, config.images_per_class, config.seed, len(CLASSES))
    trained = load_trained(RunPaths.for_run(args.run).model, len(CLASSES))

    layer = gradcam.last_block_with_side(trained.model, trained.input_size, config.min_side)
    explanation = gradcam.explain(trained, images[picks], layer)
    figure = gradcam.gradcam_figure(
        args.run,
        trained,
        explanation,
        labels[picks],
        CLASSES,
        per_row=config.images_per_class,
        data=summary.label,
    )
    save_figure(figure, GRADCAM_PLOTS / f"{args.run}.png")


if __name__ == "__main__":
    run_stage(main)
