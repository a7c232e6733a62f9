"""Stage `cost`: parameters, MACs and CPU latency of every model at every grid point."""

from mobilenet_study import cost
from mobilenet_study.files import atomic_dir, save_figure, write_table
from mobilenet_study.grid import Grid
from mobilenet_study.layout import COST_PLOTS
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage


def main() -> None:
    params = load_params()
    # Validate everything before any work or output: a bad α, ρ or setting names its key.
    grid = Grid.from_params(params)
    settings = cost.CostSettings.from_params(params)

    table = cost.profile_grid(grid.points, settings)
    scaling = cost.scaling_table(grid.points)

    with atomic_dir(COST_PLOTS) as plots:
        tables = {"cost": table, "scaling": scaling, **cost.scaling_tables(scaling)}
        for name, frame in tables.items():
            write_table(plots / f"{name}.csv", frame)
        save_figure(cost.scaling_figure(scaling, "width"), plots / "scaling_width.png")
        save_figure(cost.scaling_figure(scaling, "resolution"), plots / "scaling_resolution.png")
        save_figure(cost.latency_figure(table), plots / "latency_vs_macs.png")


if __name__ == "__main__":
    run_stage(main)
