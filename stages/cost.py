"""Stage `cost`: parameters, MACs and CPU latency of every model at every grid point."""

from mobilenet_study import cost
from mobilenet_study.grid import Grid
from mobilenet_study.outputs import atomic_dir, atomic_path, save_figure, write_json
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage

METRICS = "metrics/cost.json"
PLOTS = "plots/cost"


def main() -> None:
    params = load_params()
    # Validate everything before any work or output: a bad α, ρ or setting names its key.
    grid = Grid.from_params(params)
    settings = cost.CostSettings.from_params(params)

    table = cost.profile_grid(grid.points, settings)

    with atomic_dir(PLOTS) as plots:
        with atomic_path(plots / "cost.csv") as tmp:
            table.to_csv(tmp, index=False)
        save_figure(cost.scaling_figure(table, "width"), plots / "scaling_width.png")
        save_figure(cost.scaling_figure(table, "resolution"), plots / "scaling_resolution.png")
        save_figure(cost.latency_figure(table), plots / "latency_vs_macs.png")
    write_json(METRICS, cost.metrics(table))


if __name__ == "__main__":
    run_stage(main)
