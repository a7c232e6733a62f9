"""Stage `theory_gradcam`: Q4b measured on a trained run — how much of Grad-CAM's raw map the
ReLU removes, and whether masking the top-CAM pixels lowers the class score more than masking
as many random pixels."""

from mobilenet_study import gradcam
from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import load_split
from mobilenet_study.files import atomic_dir, save_figure, write_json, write_table
from mobilenet_study.gradcam_checks import gradcam_relu
from mobilenet_study.grid import Grid
from mobilenet_study.layout import PREPARED, THEORY_GRADCAM_METRICS, THEORY_GRADCAM_PLOTS, RunPaths
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.theory import figures
from mobilenet_study.theory.config import TheoryParams, check_gradcam_run
from mobilenet_study.theory.experiments import finite_or_none, gradcam_headline
from mobilenet_study.training.artifacts import load_trained


def main() -> None:
    params = load_params()
    config = TheoryParams.from_params(params)
    check_gradcam_run(config.gradcam, [run.name for run in Grid.from_params(params).runs])
    min_side = gradcam.GradCamParams.from_params(params).min_side
    checks = config.gradcam
    images, labels = load_split(PREPARED, "test")
    picks = gradcam.select_images(labels, checks.images_per_class, config.seed, len(CLASSES))
    trained = load_trained(RunPaths.for_run(checks.run).model, len(CLASSES))
    layer = gradcam.last_block_with_side(trained.model, trained.input_size, min_side)
    per_image, summary = gradcam_relu(
        trained, images[picks], layer, checks.deleted_fraction, config.seed
    )
    with atomic_dir(THEORY_GRADCAM_PLOTS) as plots:
        write_table(plots / "deletion.csv", per_image)
        save_figure(figures.deletion_figure(per_image), plots / "deletion.png")
        # Everything the PDF reads; metrics/ keeps the headline only (dvc metrics show).
        summary = finite_or_none({"run": checks.run, **summary})
        write_json(plots / "summary.json", summary)
    write_json(THEORY_GRADCAM_METRICS, gradcam_headline(summary))


if __name__ == "__main__":
    run_stage(main)
