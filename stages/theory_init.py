"""Stage `theory_init`: Q1a/b measured on a deep plain ReLU network without BatchNorm — signal
and gradient scale per layer at initialisation (zero, Xavier, He), symmetry after training from
zero and constant starts, and Xavier against He in training."""

from mobilenet_study.data.prepared import load_split, read_stats
from mobilenet_study.files import atomic_dir, save_figure, write_json, write_table
from mobilenet_study.layout import PREPARED, THEORY_INIT_METRICS, THEORY_INIT_PLOTS
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.theory import experiments, figures
from mobilenet_study.theory.config import TheoryParams
from mobilenet_study.theory.training import TrainingImages


def main() -> None:
    config = TheoryParams.from_params(load_params())
    images, labels = load_split(PREPARED, "train")
    stats = read_stats(PREPARED)
    outcome = experiments.initialisation(
        config, TrainingImages.from_arrays(images, labels, stats.mean, stats.std, config.input_size)
    )
    with atomic_dir(THEORY_INIT_PLOTS) as plots:
        for name, table in outcome.tables.items():
            write_table(plots / f"{name}.csv", table)
        save_figure(
            figures.propagation_figure(outcome.tables["propagation"]), plots / "propagation.png"
        )
        save_figure(
            figures.init_training_figure(outcome.tables["init_training"], experiments.CHANCE_LOSS),
            plots / "init_training.png",
        )
        # Everything the PDF reads; metrics/ keeps the headline only (dvc metrics show).
        summary = experiments.finite_or_none(outcome.summary)
        write_json(plots / "summary.json", summary)
    write_json(THEORY_INIT_METRICS, experiments.init_headline(summary))


if __name__ == "__main__":
    run_stage(main)
