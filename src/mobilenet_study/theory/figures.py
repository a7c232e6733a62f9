"""The theory stages' figures (PNG, for reports/theory.pdf), drawn from their tables."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mobilenet_study.files import pyplot

INIT_COLOURS = {"xavier": "tab:orange", "he": "tab:blue", "zero": "tab:grey"}


def propagation_figure(table: pd.DataFrame) -> Any:
    """Per layer at initialisation: the activations' RMS (measured, and the closed-form
    expectation dashed) and the weight gradients' norm, for Xavier and He (log scale; zero
    initialisation is all zeros and has no place on it)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for init, rows in table[table["init"] != "zero"].groupby("init", sort=False):
        colour = INIT_COLOURS.get(init)
        left.plot(rows["layer"], rows["activation_rms"], "o-", ms=3, color=colour, label=init)
        left.plot(rows["layer"], rows["expected_rms"], "--", color=colour, alpha=0.7)
        right.plot(rows["layer"], rows["weight_grad_norm"], "o-", ms=3, color=colour, label=init)
    left.set(yscale="log", xlabel="conv layer", ylabel="activation RMS after ReLU")
    left.set_title("forward: measured (dots), closed form (dashed)", fontsize=9)
    right.set(yscale="log", xlabel="conv layer", ylabel="‖∂L/∂W‖ of the layer")
    right.set_title("backward: weight-gradient norm", fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def init_training_figure(curves: pd.DataFrame, chance: float) -> Any:
    """Training loss against step for each initialisation, beside the chance loss ln 10."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for init, rows in curves.groupby("init", sort=False):
        ax.plot(rows["step"], rows["train_loss"], color=INIT_COLOURS.get(init), label=init)
    ax.axhline(chance, color="black", lw=0.8, ls=":", label=f"chance, ln 10 = {chance:.3f}")
    ax.set(xlabel="SGD step", ylabel="training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def degradation_figure(curves: pd.DataFrame) -> Any:
    """Training error and first-layer gradient norm against step: plain dashed, ResNet solid,
    one colour per depth (He et al. 2016, Fig. 6's layout)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    depths = sorted({int(name.split("-")[1]) for name in curves["network"]})
    colours = dict(zip(depths, ["tab:blue", "tab:red", "tab:green", "tab:purple"], strict=False))
    for name, rows in curves.groupby("network", sort=False):
        kind, depth = name.split("-")
        style = "--" if kind == "plain" else "-"
        colour = colours.get(int(depth))
        left.plot(rows["step"], rows["train_error"] * 100, style, color=colour, label=name)
        grads = rows["first_layer_grad_norm"].where(rows["first_layer_grad_norm"] > 0)
        right.plot(rows["step"], grads, style, color=colour, label=name)
    left.set(xlabel="SGD step", ylabel="training error (%)")
    right.set(xlabel="SGD step", ylabel="‖∂L/∂W‖, first conv layer", yscale="log")
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def deletion_figure(per_image: pd.DataFrame) -> Any:
    """Per image, the drop of y_c when the top-CAM pixels are masked against the drop when as
    many random pixels are; points above the diagonal favour Grad-CAM's ranking."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    cam = per_image["score"] - per_image["score_cam_masked"]
    random = per_image["score"] - per_image["score_random_masked"]
    ax.scatter(random, cam, s=10, alpha=0.7)
    low = math.floor(min(cam.min(), random.min()))
    high = math.ceil(max(cam.max(), random.max()))
    ax.plot([low, high], [low, high], color="black", lw=0.8)
    ax.set(xlabel="drop of y_c, random pixels masked", ylabel="drop of y_c, top-CAM pixels masked")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
