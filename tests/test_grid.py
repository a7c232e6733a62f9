"""The grid: run names as DVC's matrix writes them, and bad grids named by key."""

from __future__ import annotations

import pytest

from mobilenet_study.grid import Grid, input_size
from mobilenet_study.params import ParamError


def grid_params(seeds: object = (0,), twin: dict | None = None, **sweep: object) -> dict:
    base = {"models": ["mobilenet_v1"], "widths": [0.5, 1.0], "resolutions": [0.5, 1.0]}
    no_twin = {"models": [], "widths": [1.0], "resolutions": [1.0]}
    reference = {"models": ["baseline"], "widths": [1.0], "resolutions": [1.0]}
    grid = {
        "sweep": {**base, **sweep},
        "twin": {**no_twin, **(twin or {})},
        "reference": reference,
        "seeds": list(seeds),
    }
    return {"grid": grid}


def test_points_runs_names_and_stages() -> None:
    grid = Grid.from_params(grid_params(seeds=[0, 7]))
    assert [pt.name for pt in grid.points] == [
        "mobilenet_v1-0.5-0.5",
        "mobilenet_v1-0.5-1.0",
        "mobilenet_v1-1.0-0.5",
        "mobilenet_v1-1.0-1.0",
        "baseline-1.0-1.0",
    ]
    # Every point once per seed, named as DVC's matrix names the stage (values joined by "-").
    assert [run.name for run in grid.runs[:3]] == [
        "mobilenet_v1-0.5-0.5-0",
        "mobilenet_v1-0.5-0.5-7",
        "mobilenet_v1-0.5-1.0-0",
    ]
    assert len(grid.runs) == 10 and grid.first_seed == 0
    assert grid.runs[0].stage == "train@mobilenet_v1-0.5-0.5-0"
    assert grid.runs[-1].stage == "train_reference@baseline-1.0-1.0-7"
    assert grid.find("baseline-1.0-1.0-7").point == grid.points[-1]
    with pytest.raises(ParamError, match=r"known runs: mobilenet_v1-0\.5-0\.5-0"):
        grid.find("baseline-1.0-1.0")


def test_the_twin_block_trains_the_baseline_at_points_of_its_own() -> None:
    # The cpu profile's shape: V1 over α x ρ, the baseline at ρ = 1 only, in stage train_twin.
    twin = {"models": ["baseline"], "widths": [0.5, 1.0], "resolutions": [1.0]}
    params = grid_params(twin=twin)
    params["grid"]["reference"] = {"models": ["mobilenet_v2"], "widths": [1.0], "resolutions": [1]}
    grid = Grid.from_params(params)
    assert [run.stage for run in grid.runs if run.model == "baseline"] == [
        "train_twin@baseline-0.5-1.0-0",
        "train_twin@baseline-1.0-1.0-0",
    ]
    assert len(grid.runs) == 7 and grid.runs[-1].stage == "train_reference@mobilenet_v2-1.0-1-0"


def test_whole_numbers_keep_the_name_dvc_gives_them() -> None:
    # DVC renders the YAML value 1 as "1" in `train@mobilenet_v1-1-1.0-0`.
    run = Grid.from_params(grid_params(widths=[1], resolutions=[1.0])).runs[0]
    assert run.name == "mobilenet_v1-1-1.0-0" and run.input_size == 32


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"widths": [0.5, 0.5]}, r"`grid.sweep.widths` is \[0.5, 0.5\]; expected distinct"),
        ({"widths": [0.0]}, r"`grid.sweep.widths\[0\]` is 0.0"),
        ({"widths": [4.5]}, r"`grid.sweep.widths\[0\]` is 4.5"),
        ({"resolutions": [0.2]}, r"`grid.sweep.resolutions\[0\]` is 0.2.*>= 8 pixels"),
        ({"models": ["resnet"]}, r"`grid.sweep.models\[0\]` is 'resnet'; allowed: mobilenet_v1"),
        ({"models": []}, r"`grid.sweep.models` is \[\]; expected a non-empty list"),
        (
            {"models": ["baseline"], "widths": [1.0], "resolutions": [1.0]},
            "one block of grid.sweep, grid.twin, grid.reference",
        ),
    ],
)
def test_bad_grid_names_the_key(sweep: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        Grid.from_params(grid_params(**sweep))


@pytest.mark.parametrize(
    ("twin", "message"),
    [
        (
            {"models": ["mobilenet_v1"]},
            r"`grid.twin.models\[0\]` is 'mobilenet_v1'; allowed: baseline",
        ),
        ({"models": "baseline"}, r"`grid.twin.models` is 'baseline'; expected a list"),
        ({"widths": []}, r"`grid.twin.widths` is \[\]; expected a non-empty list"),
        # The reference block's baseline point, trained by two stages.
        ({"models": ["baseline"]}, "one block of grid.sweep, grid.twin"),
    ],
)
def test_bad_twin_block_names_the_key(twin: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        Grid.from_params(grid_params(twin=twin))


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ([], r"`grid.seeds` is \[\]; expected a non-empty list"),
        ([0, 0], r"`grid.seeds` is \[0, 0\]; expected distinct values"),
        ([0, -1], r"`grid.seeds\[1\]` is -1; allowed: a whole number"),
        ([1.5], r"`grid.seeds\[0\]` is 1.5"),
        ([True], r"`grid.seeds\[0\]` is True"),
        (3, r"`grid.seeds` is 3; expected a non-empty list"),
    ],
)
def test_bad_seeds_name_the_key(seeds: object, message: str) -> None:
    params = grid_params()
    params["grid"]["seeds"] = seeds
    with pytest.raises(ParamError, match=message):
        Grid.from_params(params)


def test_input_size_rounds_half_up() -> None:
    assert [input_size(r) for r in (0.25, 0.5, 0.625, 0.75, 1.0)] == [8, 16, 20, 24, 32]
    assert input_size(0.515625) == 17  # 16.5 rounds up, not to even
