"""The profiles' grids: what each trains, read through the same Grid the pipeline reads."""

from __future__ import annotations

from mobilenet_study import profiles
from mobilenet_study.grid import Grid
from mobilenet_study.params import load_params
from mobilenet_study.training.recipe import TrainParams

from .conftest import REPO_ROOT


def _params(profile: str) -> dict:
    committed = load_params(REPO_ROOT / "params.yaml")
    return profiles.with_overrides(committed, profiles.profile_overrides(profile, None))


def test_the_cpu_profile_trains_the_assignments_questions() -> None:
    params = _params("cpu")
    runs = Grid.from_params(params).runs
    models = ("mobilenet_v1", "baseline", "mobilenet_v2")
    by_model = {m: [(r.width, r.resolution) for r in runs if r.model == m] for m in models}
    # V1 over α x ρ (the two sweeps and §4.2 between them), the baseline at ρ = 1 only (Table 4
    # at α = 1, matched MACs at α 0.25), V2 at one point: 13 runs, one seed.
    assert sorted(by_model["mobilenet_v1"]) == [
        (w, r) for w in (0.25, 0.5, 1.0) for r in (0.5, 0.75, 1.0)
    ]
    assert sorted(by_model["baseline"]) == [(0.25, 1.0), (0.5, 1.0), (1.0, 1.0)]
    assert len(by_model["mobilenet_v2"]) == 1 and len(runs) == 13
    assert {r.stage.split("@")[0] for r in runs if r.model == "baseline"} == {"train_twin"}
    # Every training image, every test image, the committed recipe at 10 epochs.
    recipe = TrainParams.from_params(params)
    assert (recipe.train_subset, recipe.test_subset, recipe.epochs) == (0, 0, 10)
    committed = TrainParams.from_params(load_params(REPO_ROOT / "params.yaml"))
    assert recipe.warmup_epochs / recipe.epochs == committed.warmup_epochs / committed.epochs
    # The Grad-CAM stages' runs are runs of this grid.
    names = {r.name for r in runs}
    assert set(params["gradcam"]["runs"]) <= names
    assert params["theory"]["gradcam"]["run"] in names


def test_the_full_profile_keeps_the_baseline_at_every_point() -> None:
    runs = Grid.from_params(_params("full")).runs
    v1 = {(r.width, r.resolution) for r in runs if r.model == "mobilenet_v1"}
    baseline = {(r.width, r.resolution) for r in runs if r.model == "baseline"}
    assert v1 == baseline and len(v1) == 16
    assert all(r.stage.startswith("train@") for r in runs if r.model != "mobilenet_v2")
