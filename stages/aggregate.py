"""Stage `aggregate`: every run's metrics in one table, the study's plots and its report."""

from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import METRICS_FILE, read_summary
from mobilenet_study.grid import Grid
from mobilenet_study.outputs import atomic_dir, save_figure, write_json, write_table, write_text
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage
from mobilenet_study.study import figures, latency, report, table

METRICS = "metrics/study.json"
PLOTS = "plots/study"
REPORT = "reports/study.md"

# (figure, from the repository root; caption): the report shows them in this order. The cost
# stage draws the scaling and latency figures; this stage does not draw them again.
FIGURES = (
    (f"{PLOTS}/accuracy_vs_macs.png", "Test accuracy (95% intervals) against MACs, frontiers"),
    (f"{PLOTS}/accuracy_vs_multipliers.png", "Test accuracy (95% intervals) against α and ρ"),
    (f"{PLOTS}/accuracy_vs_latency.png", "Test accuracy against ONNX Runtime latency, fp32, int8"),
    ("plots/cost/scaling_width.png", "Measured MACs and params against α, beside α²"),
    ("plots/cost/scaling_resolution.png", "Measured MACs and params against ρ, beside ρ²"),
    ("plots/cost/latency_vs_macs.png", "CPU latency per image against MACs"),
    (f"{PLOTS}/curves.png", "Test accuracy and loss per epoch, every run"),
    (f"{PLOTS}/confusion.png", "Confusion matrix of the most accurate MobileNet run"),
)


def main() -> None:
    params = load_params()
    # Validate and read every input before writing anything: a missing run names its stage.
    grid = Grid.from_params(params)
    summary = read_summary(METRICS_FILE)
    runs = table.read_runs(grid.runs)
    cost_table = table.read_cost_table()
    scaling = table.read_cost_table(table.SCALING_TABLE)

    study = table.study_table(runs, cost_table, grid.first_seed)
    tests = table.PairedTests.of(runs)
    curves = table.curves_table(runs)
    latencies = latency.latency_table(runs)
    deployed = latency.deploy_table(study, runs, latencies)
    best = table.best_mobilenet(study)
    best_run = next(run for run in runs if run.run.name == best["run"])
    predictions = table.read_predictions(best_run.predictions.path)
    confusion = table.confusion_counts(predictions, CLASSES)

    with atomic_dir(PLOTS) as plots:
        tables = {
            "study": study,
            "curves": curves,
            "confusion": predictions,
            "deploy": deployed,
            "deploy_latency": latencies,
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
    write_json(METRICS, table.study_metrics(study))
    deploy_section = latency.section(study, runs, latencies, tests)
    write_text(
        REPORT,
        report.build_report(
            study, scaling, summary, tests, best, confusion, FIGURES, deploy_section
        ),
    )


if __name__ == "__main__":
    run_stage(main)
