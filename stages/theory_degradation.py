"""Stage `theory_degradation`: Q1a/c measured — plain-n against ResNet-n (He et al. 2016 §4.2)
at each depth, one recipe: training-error curves and the gradient reaching the first layer."""

from mobilenet_study.data.prepared import load_split, read_stats
from mobilenet_study.files import atomic_dir, save_figure, write_json, write_table
from mobilenet_study.layout import PREPARED, THEORY_DEGRADATION_METRICS, THEORY_DEGRADATION_PLOTS
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.theory import experiments, figures
from mobilenet_study.theory.config import TheoryParams
from mobilenet_study.theory.training import TrainingImages


def main() -> None:
    config = TheoryParams.from_params(load_params())
    images, labels = load_split(PREPARED, "train")
    stats = read_stats(PREPARED)
    outcome = experiments.degradation(
        config, TrainingImages.from_arrays(images, labels, stats.mean, stats.std, config.input_size)
    )
    with atomic_dir(THEORY_DEGRADATION_PLOTS) as plots:
        write_table(plots / "degradation.csv", outcome.tables["degradation"])
        save_figure(
            figures.degradation_figure(outcome.tables["degradation"]), plots / "degradation.png"
        )
        # Everything the PDF reads; metrics/ keeps the headline only (dvc metrics show).
        summary = experiments.finite_or_none(outcome.summary)
        write_json(plots / "summary.json", summary)
    write_json(THEORY_DEGRADATION_METRICS, experiments.degradation_headline(summary))


if __name__ == "__main__":
    run_stage(main)
