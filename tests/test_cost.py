"""Cost: the papers' tables, analytic vs measured, latency statistics, and the `cost` stage."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest
import torch
from torch import nn

from mobilenet_study import cost, timing
from mobilenet_study.grid import Grid, GridPoint
from mobilenet_study.models import LayerSpec, build, counting, layer_specs
from mobilenet_study.params import ParamError, load_params

from .conftest import REPO_ROOT, PipelineRepo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # The test machine's cores are shared: one intra-op thread avoids oversubscription stalls.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _imagenet(name: str, width: float, side: int) -> tuple[cost.Cost, cost.Cost]:
    """(analytic, measured) cost of the papers' ImageNet network: 1000 classes, side×side."""
    analytic = counting.analytic_cost(name, width, side, num_classes=1000, variant="imagenet")
    model = build(name, width, num_classes=1000, variant="imagenet")
    return analytic, cost.measured_cost(model, side)


# --- The papers' numbers (ImageNet variants) -----------------------------------------------

# Howard et al. 2017: Table 6 (width α at 224), Table 7 (resolution at α = 1). Mult-adds and
# parameters in millions; parameters are given to one decimal.
V1_TABLE_6 = [(1.0, 569, 4.2), (0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.5)]
V1_TABLE_7 = [(192, 418), (160, 290), (128, 186)]


@pytest.mark.parametrize(("width", "mmacs", "mparams"), V1_TABLE_6)
def test_mobilenet_v1_table_6(width: float, mmacs: float, mparams: float) -> None:
    for c in _imagenet("mobilenet_v1", width, 224):
        assert c.macs / 1e6 == pytest.approx(mmacs, rel=0.01)
        assert round(c.params / 1e6, 1) == mparams


@pytest.mark.parametrize(("side", "mmacs"), V1_TABLE_7)
def test_mobilenet_v1_table_7(side: int, mmacs: float) -> None:
    for c in _imagenet("mobilenet_v1", 1.0, side):
        assert c.macs / 1e6 == pytest.approx(mmacs, rel=0.01)
        assert round(c.params / 1e6, 1) == 4.2  # ρ does not change the parameters


def test_conv_mobilenet_table_4() -> None:
    for c in _imagenet("baseline", 1.0, 224):
        assert c.macs / 1e6 == pytest.approx(4866, rel=0.02)
        assert c.params / 1e6 == pytest.approx(29.3, rel=0.02)


def test_mobilenet_v2_300m_macs_and_torchvision_params() -> None:
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None)
    for c in _imagenet("mobilenet_v2", 1.0, 224):
        assert c.macs / 1e6 == pytest.approx(300, rel=0.01)
        assert c.params == counting.count_params(reference)
    # torchvision's FLOP count of its own model agrees with ours exactly.
    assert (
        counting.measured_macs(reference, 224)
        == counting.analytic_cost(
            "mobilenet_v2", 1.0, 224, num_classes=1000, variant="imagenet"
        ).macs
    )


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.3])
def test_mobilenet_v2_params_match_torchvision_at_other_widths(width: float) -> None:
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None, width_mult=width)
    ours = counting.analytic_cost("mobilenet_v2", width, 224, num_classes=1000, variant="imagenet")
    assert ours.params == counting.count_params(reference)


# --- Analytic vs measured on the study's grid (CIFAR variants) ------------------------------


def _agree(name: str, width: float, side: int) -> None:
    analytic = counting.analytic_cost(name, width, side)
    measured = cost.measured_cost(build(name, width), side)
    assert measured.macs == pytest.approx(analytic.macs, rel=0.005)
    assert measured.params == pytest.approx(analytic.params, rel=0.005)


def test_analytic_and_measured_agree_on_every_grid_point() -> None:
    for point in Grid.from_params(load_params(REPO_ROOT / "params.yaml")).points:
        _agree(point.model, point.width, point.input_size)


@pytest.mark.parametrize("name", ["mobilenet_v1", "baseline", "mobilenet_v2"])
@pytest.mark.parametrize(("width", "side"), [(0.3, 17), (1.1, 9), (0.6, 27)])
def test_analytic_and_measured_agree_off_the_grid(name: str, width: float, side: int) -> None:
    _agree(name, width, side)


def test_measured_macs_restore_training_mode() -> None:
    model = build("mobilenet_v1", 0.25).train()
    counting.measured_macs(model, 16)
    assert model.training


# --- The paper's formulas, layer by layer ----------------------------------------------------


def _layer(kind: str, m: int, n: int, k: int, side: int, bn: bool = True) -> LayerSpec:
    return LayerSpec("x", kind, m, n, k, 1, side, side, bn)  # type: ignore[arg-type]


def test_layer_cost_formulas() -> None:
    # Standard: D_K²·M·N·D_F²; depthwise: D_K²·M·D_F²; pointwise: M·N·D_F²; linear: M·N.
    assert counting.layer_cost(_layer("standard", 4, 6, 3, 5)) == counting.Cost(
        9 * 4 * 6 * 25, 216 + 12
    )
    assert counting.layer_cost(_layer("depthwise", 4, 4, 3, 5)) == counting.Cost(9 * 4 * 25, 36 + 8)
    assert counting.layer_cost(_layer("pointwise", 4, 6, 1, 5)) == counting.Cost(
        4 * 6 * 25, 24 + 12
    )
    assert counting.layer_cost(_layer("linear", 10, 3, 1, 1, bn=False)) == counting.Cost(30, 33)


def test_depthwise_separable_saves_the_papers_ratio() -> None:
    """Eq. 5: separable / standard = 1/N + 1/D_K² for the same block (here 512 → 512, 3×3)."""
    sep = layer_specs("mobilenet_v1", input_size=32)
    std = layer_specs("baseline", input_size=32)
    dw, pw = (s for s in sep if s.name.startswith("features.7."))
    conv = next(s for s in std if s.name == "features.7")
    ratio = (counting.layer_cost(dw).macs + counting.layer_cost(pw).macs) / counting.layer_cost(
        conv
    ).macs
    assert ratio == pytest.approx(1 / 512 + 1 / 9)


# --- Latency ---------------------------------------------------------------------------------


def test_summarize_times_median_and_iqr() -> None:
    lat = timing.summarize_times([4.0, 1.0, 3.0, 2.0, 100.0], batch_size=2)
    assert lat.median_ms == 3.0
    assert lat.iqr_ms == pytest.approx(4.0 - 2.0)  # robust to the one slow outlier
    assert (lat.median_ms_per_image, lat.iqr_ms_per_image) == (1.5, 1.0)


class _Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.shapes.append(tuple(x.shape))
        assert not torch.is_grad_enabled() and not self.training
        return self.linear(x.mean(dim=(2, 3)))


def test_measure_latency_warms_up_times_and_restores_state() -> None:
    model = _Counter().train()
    before = torch.get_num_threads()
    lat = cost.measure_latency(model, 8, batch_size=4, warmup=2, repeats=5, threads=1)
    assert model.calls == 7 and set(model.shapes) == {(4, 3, 8, 8)}
    assert lat.batch_size == 4 and lat.median_ms > 0 and lat.iqr_ms >= 0
    assert model.training and torch.get_num_threads() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_measure_latency_on_cuda() -> None:
    lat = cost.measure_latency(
        build("mobilenet_v1", 0.25), 16, batch_size=8, warmup=2, repeats=5, threads=1, device="cuda"
    )
    assert lat.median_ms > 0


# --- Settings, metrics, figures ------------------------------------------------------------

SETTINGS = {"device": "cpu", "threads": 1, "batch_size": 2, "warmup": 0, "repeats": 3}


def test_settings_from_params() -> None:
    settings = cost.CostSettings.from_params({"cost": SETTINGS})
    assert settings == cost.CostSettings("cpu", 1, 2, 0, 3)
    assert cost.CostSettings.from_params(load_params(REPO_ROOT / "params.yaml")).repeats >= 3


@pytest.mark.parametrize(
    ("key", "value"),
    [("device", "tpu"), ("threads", 0), ("batch_size", 1.5), ("warmup", -1), ("repeats", 2)],
)
def test_bad_settings_name_their_key(key: str, value: object) -> None:
    with pytest.raises(ParamError, match=rf"cost\.{key}"):
        cost.CostSettings.from_params({"cost": {**SETTINGS, key: value}})


def test_missing_setting_names_its_key() -> None:
    with pytest.raises(ParamError, match=r"cost\.repeats"):
        cost.CostSettings.from_params(
            {"cost": {k: v for k, v in SETTINGS.items() if k != "repeats"}}
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_setting_without_cuda_is_refused() -> None:
    with pytest.raises(ParamError, match=r"cost\.device.*CUDA is not available"):
        cost.CostSettings.from_params({"cost": {**SETTINGS, "device": "cuda"}})


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    points = [GridPoint("mobilenet_v1", w, r) for w in (0.5, 1.0) for r in (0.75, 1.0)]
    points.append(GridPoint("mobilenet_v2", 0.5, 1.0))
    return cost.profile_grid(points, cost.CostSettings("cpu", 1, 2, 0, 3))


def test_profile_grid_rows_and_normalisation(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(cost.COLUMNS)
    assert len(table) == 5
    ref = table[(table.model == "mobilenet_v1") & (table.width == 1.0) & (table.resolution == 1.0)]
    assert ref.macs_norm.item() == 1.0 and ref.params_norm.item() == 1.0
    assert (table.macs_measured == table.macs_analytic).all()
    # Normalised to the same model at α = ρ = 1 even when that point is not in the grid.
    v2 = table[table.model == "mobilenet_v2"]
    # The reference by the other path: analytic counting from the layer specs, no hooks.
    full = counting.analytic_cost("mobilenet_v2", 1.0, 32)
    assert v2.macs_norm.item() == pytest.approx(v2.macs_measured.item() / full.macs)
    assert v2.params_norm.item() == pytest.approx(v2.params_measured.item() / full.params)
    half = table[(table.model == "mobilenet_v1") & (table.width == 0.5)]
    # V1 at α = 0.5 sits just above α² = 0.25 (stem, depthwise, BN, classifier ∝ α); V2's
    # fixed 1280 head keeps its params well above that.
    assert 0.25 < half.params_norm.iloc[0] < 0.27
    assert v2.params_norm.item() > 0.3
    assert (half.params_theory == 0.25).all()
    assert half.macs_theory.tolist() == [0.140625, 0.25]  # α²ρ²: 0.25 · 0.5625, 0.25 · 1


def test_scaling_covers_the_grid_multipliers_at_the_other_one_fixed_at_1() -> None:
    # A grid without α = 1 or ρ = 1 still gets its scaling: counting needs no training.
    scaling = cost.scaling_table([GridPoint("mobilenet_v1", 0.5, 0.75)])
    assert list(zip(scaling["width"], scaling["resolution"], strict=True)) == [
        (0.5, 1.0),
        (1.0, 1.0),
        (1.0, 0.75),
    ]
    assert scaling["macs_norm"].tolist()[1] == 1.0
    assert (scaling["macs_measured"] == scaling["macs_analytic"]).all()
    tables = cost.scaling_tables(scaling)
    width = tables["scaling_width"]
    assert list(width.columns) == ["series", "width", "ratio"]
    v1 = width[width["series"] == "mobilenet_v1 MACs (measured)"]
    assert v1["width"].tolist() == [0.5, 1.0] and v1["ratio"].iloc[-1] == 1.0
    assert width[width["series"] == "α²"]["ratio"].tolist() == [0.25, 1.0]
    resolution = tables["scaling_resolution"]
    assert resolution[resolution["series"] == "ρ²"]["ratio"].tolist() == [0.5625, 1.0]
    assert (resolution[resolution["series"] == "1 (params)"]["ratio"] == 1.0).all()


@pytest.mark.parametrize("axis", ["width", "resolution"])
def test_scaling_figure_explains_the_deviations(table: pd.DataFrame, axis: str) -> None:
    fig = cost.scaling_figure(table, axis)
    text = " ".join(t.get_text() for t in fig.texts)
    if axis == "width":
        assert "stem" in text and "classifier" in text and "1280" in text
    else:
        assert "classifier" in text and "stride-2" in text
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert any(label.startswith("theory") for label in labels)
    import matplotlib.pyplot as plt

    plt.close(fig)


# --- The stage ------------------------------------------------------------------------------

TINY_GRID = {
    "grid.sweep.models": ["mobilenet_v1"],
    "grid.sweep.widths": [0.25, 0.5],
    "grid.sweep.resolutions": [0.5],
    "grid.reference.models": ["mobilenet_v2"],
    "grid.reference.widths": [0.25],
    "grid.reference.resolutions": [0.25],
    **{f"cost.{k}": v for k, v in SETTINGS.items()},
}


@pytest.mark.slow
def test_stage_writes_tables_and_plots(pipeline_repo: PipelineRepo) -> None:
    pipeline_repo.set_params(TINY_GRID)
    pipeline_repo.dvc("repro", "cost")
    plots = pipeline_repo.path / "plots/cost"
    with (plots / "cost.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["input_size"]) for r in rows] == [
        ("mobilenet_v1", "16"),
        ("mobilenet_v1", "16"),
        ("mobilenet_v2", "8"),
    ]
    for name in ("scaling_width.png", "scaling_resolution.png", "latency_vs_macs.png"):
        assert (plots / name).read_bytes().startswith(PNG_MAGIC)
    for name in ("scaling_width.csv", "scaling_resolution.csv"):
        assert (plots / name).read_text().startswith("series,")
    # The cost is a table to read, not a metric to compare: nothing of it in `dvc metrics`.
    assert not (pipeline_repo.path / "metrics/cost.json").exists()
    # Nothing changed, so nothing reruns.
    assert "didn't change" in pipeline_repo.dvc("repro", "cost").stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "value"),
    [("grid.sweep.widths", [0.5, 0]), ("grid.reference.resolutions", [0.2])],
)
def test_stage_refuses_bad_grid_before_writing(
    pipeline_repo: PipelineRepo, key: str, value: list[float]
) -> None:
    pipeline_repo.set_params({**TINY_GRID, key: value})
    bad_key = f"{key}[{len(value) - 1}]"
    result = pipeline_repo.dvc("repro", "cost", check=False)
    assert result.returncode != 0
    assert bad_key in result.stderr + result.stdout
    # The script itself exits 2 with a one-paragraph message, no traceback.
    direct = subprocess.run(
        [sys.executable, "stages/cost.py"], cwd=pipeline_repo.path, capture_output=True, text=True
    )
    assert direct.returncode == 2
    assert direct.stderr.startswith("error: ") and bad_key in direct.stderr
    assert "Traceback" not in direct.stderr
    assert not (pipeline_repo.path / "metrics/cost.json").exists()
    assert not (pipeline_repo.path / "plots/cost").exists()
