"""Stage `aggregate`: every run's metrics in one table, the study's plots, floors and report."""

from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import read_summary
from mobilenet_study.files import atomic_dir, save_figure, write_json, write_table, write_text
from mobilenet_study.grid import Grid
from mobilenet_study.layout import (
    COST_PLOTS,
    SCALING_TABLE,
    STUDY_METRICS,
    STUDY_PLOTS,
    STUDY_REPORT,
)
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.study import figures, floors, latency, report, table

# (figure, from the repository root; caption): the report shows them in this order. The cost
# stage draws the scaling and latency figures; this stage does not draw them again.
FIGURES = (
    (STUDY_PLOTS / "accuracy_vs_macs.png", "Test accuracy (95% intervals) against MACs, frontiers"),
    (STUDY_PLOTS / "accuracy_vs_multipliers.png", "Test accuracy (95% intervals) against α and ρ"),
    (
        STUDY_PLOTS / "accuracy_vs_latency.png",
        "Test accuracy against ONNX Runtime latency, fp32, int8",
    ),
    (COST_PLOTS / "scaling_width.png", "Measured MACs and params against α, beside α²"),
    (COST_PLOTS / "scaling_resolution.png", "Measured MACs and params against ρ, beside ρ²"),
    (COST_PLOTS / "latency_vs_macs.png", "CPU latency per image against MACs"),
    (STUDY_PLOTS / "curves.png", "Test accuracy and loss per epoch, every run"),
    (STUDY_PLOTS / "confusion.png", "Confusion matrix of the most accurate MobileNet run"),
)


def main() -> None:
    params = load_params()
    # Validate and read every input before writing anything: a missing run names its stage.
    grid = Grid.from_params(params)
    summary = read_summary()
    runs = table.read_runs(grid.runs)
    cost_table = table.read_cost_table()
    scaling = table.read_cost_table(SCALING_TABLE)

    # Each table is built once here and passed to what draws, writes or quotes it.
    study = table.study_table(runs, cost_table, grid.first_seed)
    tests = table.PairedTests.of(runs)
    curves = table.curves_table(runs)
    latencies = latency.latency_table(runs)
    deployed = latency.deploy_table(study, runs, latencies)
    found = floors.floors(study, tests)
    best = table.best_mobilenet(study)
    best_run = next(run for run in runs if run.run.name == best["run"])
    confusion = table.confusion_counts(best_run.predictions.frame(), CLASSES)

    with atomic_dir(STUDY_PLOTS) as plots:
        tables = {
            "study": study,
            "curves": curves,
            "confusion": best_run.predictions.frame(),
            "deploy": deployed,
            "deploy_latency": latencies,
            "floors": floors.floors_frame(found),
        }
        for name, frame in {**tables, **figures.series_tables(study)}.items():
            write_table(plots / f"{name}.csv", frame)
        save_figure(figures.accuracy_vs_macs_figure(study), plots / "accuracy_vs_macs.png")
        save_figure(
            figures.accuracy_vs_multipliers_figure(study), plots / "accuracy_vs_multipliers.png"
        )
        save_figure(latency.accuracy_vs_latency_figure(deployed), plots / "accuracy_vs_latency.png")
        save_figure(figures.curves_figure(curves), plots / "curves.png")
        save_figure(
            figures.confusion_figure(confusion, f"{best['run']}: test set"),
            plots / "confusion.png",
        )
    write_json(STUDY_METRICS, table.study_metrics(study))
    write_text(
        STUDY_REPORT,
        report.build_report(
            study,
            scaling,
            summary,
            tests,
            best,
            confusion,
            FIGURES,
            floors.section(found),
            latency.section(study, runs, latencies, deployed, tests),
        ),
    )


if __name__ == "__main__":
    run_stage(main)
