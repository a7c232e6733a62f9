"""The cost stage: parameters, mult-adds (MACs) and latency of every grid point.

Conventions, used in every key and column name:

- ``macs``: multiply-accumulates per image, the papers' "mult-adds". ``flops`` would be twice
  that; we never report FLOPs except as the raw output of PyTorch's counter.
- MACs count convolutions and the linear layer only: BatchNorm, activations, pooling and
  residual additions are elementwise and negligible (the papers count the same).
- ``params`` counts trainable parameters: conv and linear weights, the linear bias, and
  BatchNorm's scale and shift (2 per channel). BN running statistics are buffers, not parameters.
- Latency is milliseconds per batch (and per image = per batch / batch size), the median and
  interquartile range over repeated timed batches after warm-up, in inference mode
  (:mod:`mobilenet_study.timing`, which the deploy stage times with too): fp32 on the CPU; on
  CUDA channels_last in the training precision (the ``precision`` column).

The counts themselves are :mod:`mobilenet_study.models.counting`; this module tables them over
the grid, beside latency, and draws them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mobilenet_study import params as p
from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.files import pyplot
from mobilenet_study.grid import (
    MULTIPLIERS,
    WIDTH,
    GridPoint,
    input_size,
    multiplier,
)
from mobilenet_study.models import build

# Both counts live with the models: the training stage reports the measured one too.
from mobilenet_study.models.counting import Cost, analytic_cost, measured_cost
from mobilenet_study.timing import Latency, summarize_times, time_calls, torch_threads
from mobilenet_study.training.recipe import resolve_precision

DEVICES = ("cpu", "cuda")
# CIFAR-10: ten classes, the CIFAR variant of every model.
NUM_CLASSES = len(CLASSES)
VARIANT = "cifar"


# --- Latency --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostSettings(p.Section):
    """params.yaml ``cost:``: how latency is measured."""

    SECTION = "cost"

    device: str = p.setting(choices=DEVICES)
    threads: int = p.setting(low=1, high=256)
    batch_size: int = p.setting(low=1, high=4096)
    warmup: int = p.setting(low=0)
    repeats: int = p.setting(low=3)  # quartiles need a few samples to mean anything

    def checked(self, params: Mapping[str, Any], key: str) -> CostSettings:
        """CUDA is refused at load where there is none, before any point is profiled."""
        if self.device == "cuda" and not torch.cuda.is_available():
            raise p.ParamError(f"{key}.device", self.device, "CUDA is not available here; use cpu")
        return self


def measure_latency(
    model: nn.Module,
    input_size: int,
    *,
    batch_size: int,
    warmup: int,
    repeats: int,
    threads: int,
    device: str = "cpu",
    precision: str = "fp32",
) -> Latency:
    """Time ``repeats`` forward passes of a random batch after ``warmup`` untimed ones, with
    ``threads`` intra-op threads (:func:`~mobilenet_study.timing.time_calls`). On CUDA the
    model runs as it trains there: channels_last, under autocast when ``precision`` is bf16."""
    was_training = model.training
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, input_size, input_size, generator=generator).to(device)
    model = model.to(device).eval()
    if device == "cuda":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = (
        torch.autocast(device, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), torch_threads(threads), autocast:
            times_ms = time_calls(lambda: model(x), warmup, repeats, cuda=device == "cuda")
    finally:
        model.train(was_training)
    return summarize_times(times_ms, batch_size)


# --- The grid: one row per point ------------------------------------------------------------

COLUMNS = (
    "model",
    "width",
    "resolution",
    "input_size",
    "params_analytic",
    "params_measured",
    "macs_analytic",
    "macs_measured",
    "params_norm",
    "macs_norm",
    "params_theory",
    "macs_theory",
    "latency_ms_per_batch_median",
    "latency_ms_per_batch_iqr",
    "latency_ms_per_image_median",
    "latency_ms_per_image_iqr",
    "batch_size",
    "threads",
    "device",
    "precision",
)


def _count_row(point: GridPoint, model: nn.Module, reference: Cost) -> dict[str, Any]:
    """What a point costs in params and MACs, analytic and measured, and normalised to the
    model's ``reference`` cost at α = ρ = 1; ``*_theory`` are the paper's α²·ρ² and α²."""
    size = point.input_size
    analytic = analytic_cost(point.model, point.width, size)
    measured = measured_cost(model, size)
    return {
        "model": point.model,
        "width": point.width,
        "resolution": point.resolution,
        "input_size": size,
        "params_analytic": analytic.params,
        "params_measured": measured.params,
        "macs_analytic": analytic.macs,
        "macs_measured": measured.macs,
        "params_norm": measured.params / reference.params,
        "macs_norm": measured.macs / reference.macs,
        "params_theory": point.width**2,
        "macs_theory": point.width**2 * point.resolution**2,
    }


class _References(dict[str, Cost]):
    """Each model's measured cost at α = ρ = 1, measured once, whether or not it is a grid
    point: the ``*_norm`` columns divide by it."""

    def __missing__(self, model: str) -> Cost:
        self[model] = measured_cost(build(model), input_size(1.0))
        return self[model]


def profile_point(point: GridPoint, settings: CostSettings, reference: Cost) -> dict[str, Any]:
    """Cost of one grid point: params and MACs (:func:`_count_row`), and latency."""
    model = build(point.model, point.width, NUM_CLASSES, VARIANT)
    # On CUDA, in the precision training uses there; the CPU latency is fp32 inference.
    precision = (
        resolve_precision("auto", torch.device("cuda"), model)
        if settings.device == "cuda"
        else "fp32"
    )
    latency = measure_latency(
        model,
        point.input_size,
        batch_size=settings.batch_size,
        warmup=settings.warmup,
        repeats=settings.repeats,
        threads=settings.threads,
        device=settings.device,
        precision=precision,
    )
    return {
        **_count_row(point, model, reference),
        "latency_ms_per_batch_median": latency.median_ms,
        "latency_ms_per_batch_iqr": latency.iqr_ms,
        "latency_ms_per_image_median": latency.median_ms_per_image,
        "latency_ms_per_image_iqr": latency.iqr_ms_per_image,
        "batch_size": settings.batch_size,
        "threads": settings.threads,
        "device": settings.device,
        "precision": precision,
    }


def profile_grid(points: Iterable[GridPoint], settings: CostSettings) -> pd.DataFrame:
    """:func:`profile_point` for every point, one row each, in grid order."""
    references = _References()
    rows = [profile_point(point, settings, references[point.model]) for point in points]
    return pd.DataFrame(rows, columns=list(COLUMNS))


SCALING_COLUMNS = COLUMNS[: COLUMNS.index("macs_theory") + 1]


def scaling_table(points: Iterable[GridPoint]) -> pd.DataFrame:
    """Params and MACs of each model of the grid against α at ρ = 1, and against ρ at α = 1:
    the grid's α and ρ values, plus 1, whether or not those points are in the grid (counting
    needs no training and no timing). The paper's scaling question, asked of every grid."""
    points = list(points)
    references = _References()
    rows = []
    for model in dict.fromkeys(point.model for point in points):
        mine = [point for point in points if point.model == model]
        widths = sorted({float(point.width) for point in mine} | {1.0})
        resolutions = sorted({float(point.resolution) for point in mine} | {1.0})
        slices = [(w, 1.0) for w in widths] + [(1.0, r) for r in resolutions if r != 1.0]
        for width, resolution in slices:
            point = GridPoint(model, width, resolution)
            built = build(model, width, NUM_CLASSES, VARIANT)
            rows.append(_count_row(point, built, references[model]))
    return pd.DataFrame(rows, columns=list(SCALING_COLUMNS))


def scaling_tables(scaling: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Long-format tables for dvc.yaml's scaling plots, from :func:`scaling_table`: per model,
    measured MACs and params normalised to α = ρ = 1, against α (at ρ = 1: ``scaling_width``)
    and against ρ (at α = 1: ``scaling_resolution``), beside α² and ρ² (and 1, for params
    against ρ). The ``series`` column is what the plot template colours by."""
    out: dict[str, pd.DataFrame] = {}
    for axis, fixed, symbol in ((m.name, m.other, m.symbol) for m in MULTIPLIERS):
        rows = scaling[np.isclose(scaling[fixed], 1.0)].sort_values(["model", axis])
        parts = []
        for model, group in rows.groupby("model", sort=False):
            for metric, name in (("macs", "MACs"), ("params", "params")):
                parts.append(
                    pd.DataFrame({axis: group[axis], "ratio": group[f"{metric}_norm"]}).assign(
                        series=f"{model} {name} (measured)"
                    )
                )
        values = np.sort(rows[axis].unique())
        parts.append(pd.DataFrame({axis: values, "ratio": values**2}).assign(series=f"{symbol}²"))
        if axis == "resolution":  # parameters do not depend on the input size
            parts.append(pd.DataFrame({axis: values, "ratio": 1.0}).assign(series="1 (params)"))
        out[f"scaling_{axis}"] = pd.concat(parts, ignore_index=True)[["series", axis, "ratio"]]
    return out


# --- Figures --------------------------------------------------------------------------------

WIDTH_NOTE = (
    "Why the measured curves sit above α²:\n"
    "• the stem conv has 3 input channels whatever α is, so it scales with α, not α²;\n"
    "• depthwise 3×3 convs and BatchNorm have one kernel / scale, shift per channel: ∝ α;\n"
    "• the classifier (features × 10 classes) scales with α;\n"
    "• MobileNet V2 keeps its 1280-channel head for α < 1, so its head conv ∝ α and its\n"
    "  classifier is constant. Pointwise convs, the bulk of MobileNet's cost, follow α²."
)
RESOLUTION_NOTE = (
    "Why the measured curves differ from ρ²:\n"
    "• feature maps are whole pixels: each stride-2 layer rounds odd sides up\n"
    "  (ρ = 0.625: 20 → 10 → 5 → 3 → 2, not 1.25), so some ρ cost more than ρ²;\n"
    "• the classifier's MACs do not depend on ρ (global average pooling);\n"
    "• parameters do not depend on ρ at all (theory: 1)."
)


def scaling_figure(table: pd.DataFrame, axis: str) -> Any:
    """Normalised MACs and params against α (``axis="width"``, at ρ = 1) or ρ
    (``axis="resolution"``, at α = 1), beside the theory curves, with the reasons for the
    deviations written under the panels. ``table``: :func:`scaling_table` (or any table with
    its columns)."""
    varied = multiplier(axis)
    plt = pyplot()
    fixed, symbol, other = varied.other, varied.symbol, varied.other_symbol
    note = WIDTH_NOTE if varied == WIDTH else RESOLUTION_NOTE
    fig, panels = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = table[np.isclose(table[fixed], 1.0)]
    grid_x = np.linspace(0.0, max(1.0, float(table[axis].max())), 200)
    for panel, metric in zip(panels, ("macs", "params"), strict=True):
        for model, group in rows.groupby("model", sort=False):
            group = group.sort_values(axis)
            panel.plot(group[axis], group[f"{metric}_norm"], "o-", label=f"{model} (measured)")
        if (metric, axis) == ("params", "resolution"):
            panel.plot(grid_x, np.ones_like(grid_x), "k--", label="theory: 1")
        else:
            panel.plot(grid_x, grid_x**2, "k--", label=f"theory: {symbol}²")
        kind = "MACs (mult-adds)" if metric == "macs" else "parameters"
        panel.set_xlabel(f"{axis} multiplier {symbol} (at {other} = 1)")
        panel.set_ylabel(f"{kind} / same model at α = ρ = 1")
        panel.set_title(f"{kind} against {symbol}")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
    fig.text(0.01, -0.02, note, va="top", ha="left", fontsize=9)
    return fig


def latency_figure(table: pd.DataFrame) -> Any:
    """Latency per image (median, IQR bars) against measured MACs, one colour per model."""
    plt = pyplot()
    fig, panel = plt.subplots(figsize=(6.5, 4.5))
    for model, group in table.groupby("model", sort=False):
        panel.errorbar(
            group["macs_measured"] / 1e6,
            group["latency_ms_per_image_median"],
            yerr=group["latency_ms_per_image_iqr"] / 2,
            fmt="o",
            label=model,
        )
    first = table.iloc[0]
    panel.set_xlabel("MACs per image (millions, measured)")
    panel.set_ylabel("latency per image (ms, median; bars: IQR)")
    panel.set_title(f"{first['device']}, {first['threads']} thread(s), batch {first['batch_size']}")
    panel.set_xscale("log")
    panel.set_yscale("log")
    panel.grid(alpha=0.3, which="both")
    panel.legend(fontsize=8)
    return fig
