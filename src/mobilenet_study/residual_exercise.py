"""The assignment's two hand-computed exercises, run with :mod:`mobilenet_study.numpy_cnn`.

1. A residual block on a fixed 5x5 single-channel image: conv -> ReLU -> + input -> ReLU ->
   2x2/2 max-pool -> global average pool, every intermediate kept and drawn.
2. The conv-gradient exercise: Y = W ⋆ X (valid, stride 1), and dL/dW, dL/dX for a given dL/dY,
   checked against central finite differences.

numpy and matplotlib only: this module must not import torch.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mobilenet_study import numpy_cnn
from mobilenet_study import params as p
from mobilenet_study.files import pyplot

# Step name -> what the figure's title says it is, in pipeline order.
RESIDUAL_STEPS = {
    "input": "input X",
    "conv": "conv 3×3: W ⋆ X",
    "relu": "ReLU",
    "skip_add": "+ X (skip)",
    "skip_relu": "ReLU",
    "max_pool": "max-pool 2×2 /2",
    "global_avg_pool": "global avg pool",
}


def _image(key: str, value: Any) -> np.ndarray:
    """A params matrix as a (1, 1, H, W) float64 array: one image, one channel."""
    return np.asarray(p.as_matrix(key, value), dtype=np.float64)[None, None]


def _conv_output_shape(
    section: str, x: np.ndarray, w: np.ndarray, stride: int, padding: int
) -> tuple[int, int]:
    """The convolution's output size, or a ParamError naming the kernel key."""
    h, wid = x.shape[2:]
    kh, kw = w.shape[2:]
    if kh > h + 2 * padding or kw > wid + 2 * padding:
        raise p.ParamError(
            f"{section}.kernel",
            f"{kh}x{kw} matrix",
            f"the kernel must fit the {h}x{wid} {section}.input padded by {padding} "
            f"({h + 2 * padding}x{wid + 2 * padding})",
        )
    return (h + 2 * padding - kh) // stride + 1, (wid + 2 * padding - kw) // stride + 1


@dataclass(frozen=True)
class ResidualParams(p.Section):
    """params.yaml `residual:` — the first exercise's image, kernel, stride and padding."""

    SECTION = "residual"

    image: np.ndarray = p.setting(name="input", convert=_image)  # (1, 1, H, W)
    kernel: np.ndarray = p.setting(convert=_image)  # (1, 1, KH, KW)
    stride: int = p.setting(low=1)
    padding: int = p.setting(low=0)

    def checked(self, params: Mapping[str, Any], key: str) -> ResidualParams:
        """The convolution must keep the input's size (the skip adds the two), and the input
        must be large enough to max-pool."""
        image, kernel, stride, padding = self.image, self.kernel, self.stride, self.padding
        out = _conv_output_shape(key, image, kernel, stride, padding)
        if out != image.shape[2:]:
            raise p.ParamError(
                f"{key}.kernel",
                f"{kernel.shape[2]}x{kernel.shape[3]} matrix",
                f"the skip connection adds the input to the convolution output, so the "
                f"convolution must keep the {image.shape[2]}x{image.shape[3]} input size; "
                f"with {key}.stride={stride} and {key}.padding={padding} it gives "
                f"{out[0]}x{out[1]}",
            )
        if min(image.shape[2:]) < 2:
            raise p.ParamError(
                f"{key}.input", image[0, 0].tolist(), "2x2 max-pooling needs at least 2x2"
            )
        return self


@dataclass(frozen=True)
class ConvGradParams(p.Section):
    """params.yaml `conv_grad:` — the gradient exercise's X, W, dL/dY, stride and padding."""

    SECTION = "conv_grad"

    image: np.ndarray = p.setting(name="input", convert=_image)  # (1, 1, H, W)
    kernel: np.ndarray = p.setting(convert=_image)  # (1, 1, KH, KW)
    upstream_grad: np.ndarray = p.setting(convert=_image)  # (1, 1, H', W')
    stride: int = p.setting(low=1)
    padding: int = p.setting(low=0)

    def checked(self, params: Mapping[str, Any], key: str) -> ConvGradParams:
        """dL/dY must have the shape of the convolution's output."""
        out = _conv_output_shape(key, self.image, self.kernel, self.stride, self.padding)
        upstream = self.upstream_grad
        if upstream.shape[2:] != out:
            raise p.ParamError(
                f"{key}.upstream_grad",
                f"{upstream.shape[2]}x{upstream.shape[3]} matrix",
                f"dL/dY must have the convolution output's shape, {out[0]}x{out[1]}",
            )
        return self


@dataclass(frozen=True)
class ConvGradResult:
    y: np.ndarray
    dw: np.ndarray
    dx: np.ndarray
    db: float
    max_abs_error_vs_numeric: float


def run_residual(params: ResidualParams) -> dict[str, np.ndarray]:
    """Every step of the residual block as a 2-D matrix (the last one is 1x1)."""
    steps = numpy_cnn.residual_block(
        params.image, params.kernel, stride=params.stride, padding=params.padding
    )
    return {
        name: (value[0, 0] if value.ndim == 4 else value.reshape(1, 1))
        for name, value in steps.items()
    }


def numeric_gradients(
    x: np.ndarray, w: np.ndarray, dy: np.ndarray, stride: int, padding: int, eps: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of L = Σ conv2d(x, w) · dy with respect to x and w."""

    def loss(x_: np.ndarray, w_: np.ndarray) -> float:
        return float((numpy_cnn.conv2d(x_, w_, stride=stride, padding=padding) * dy).sum())

    grads = []
    for wrt in (x, w):
        grad = np.zeros_like(wrt)
        for index in np.ndindex(wrt.shape):
            bumped = [wrt.copy(), wrt.copy()]
            bumped[0][index] += eps
            bumped[1][index] -= eps
            pair = [(b, w) if wrt is x else (x, b) for b in bumped]
            grad[index] = (loss(*pair[0]) - loss(*pair[1])) / (2 * eps)
        grads.append(grad)
    return grads[0], grads[1]


def run_conv_grad(params: ConvGradParams) -> ConvGradResult:
    """Forward and backward of one convolution, with a finite-difference check."""
    x, w, dy = params.image, params.kernel, params.upstream_grad
    y = numpy_cnn.conv2d(x, w, stride=params.stride, padding=params.padding)
    dx, dw, db = numpy_cnn.conv2d_backward(x, w, dy, stride=params.stride, padding=params.padding)
    dx_num, dw_num = numeric_gradients(x, w, dy, params.stride, params.padding)
    error = max(np.abs(dx - dx_num).max(), np.abs(dw - dw_num).max())
    return ConvGradResult(y[0, 0], dw[0, 0], dx[0, 0], float(db[0]), float(error))


def residual_metrics(steps: Mapping[str, np.ndarray], grad: ConvGradResult) -> dict[str, Any]:
    """The stage's metrics file: the final value, every step, and the gradient exercise."""
    return {
        "output": float(steps["global_avg_pool"][0, 0]),
        "steps": {name: value.tolist() for name, value in steps.items()},
        "conv_grad": {
            "Y": grad.y.tolist(),
            "dW": grad.dw.tolist(),
            "dX": grad.dx.tolist(),
            "db": grad.db,
            "max_abs_error_vs_numeric": grad.max_abs_error_vs_numeric,
        },
    }


def _heatmap(ax: Any, matrix: np.ndarray, title: str, fmt: str = "{:.6g}") -> None:
    """An annotated heatmap: colour for magnitude, the exact value written in each cell."""
    ax.imshow(matrix, cmap="viridis")
    rows, cols = matrix.shape
    middle = (matrix.max() + matrix.min()) / 2
    for i in range(rows):
        for j in range(cols):
            value = matrix[i, j]
            colour = "black" if value > middle else "white"
            ax.text(j, i, fmt.format(value), ha="center", va="center", color=colour, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def residual_figure(steps: Mapping[str, np.ndarray], params: ResidualParams) -> Any:
    """Every step of the residual block, left to right, with the conventions stated."""
    plt = pyplot()
    names = list(RESIDUAL_STEPS)
    widths = [max(steps[n].shape[1], 1.6) for n in names]
    fig, axes = plt.subplots(
        1, len(names), figsize=(sum(widths) * 0.75 + 2, 4.2), width_ratios=widths
    )
    for k, (ax, name) in enumerate(zip(axes, names, strict=True)):
        title = f"{k}. {RESIDUAL_STEPS[name]}" if k else RESIDUAL_STEPS[name]
        _heatmap(ax, steps[name], f"{title}\n{steps[name].shape[0]}×{steps[name].shape[1]}")
    for left, right in itertools.pairwise(axes):
        a, b = left.get_position(), right.get_position()
        fig.text((a.x1 + b.x0) / 2, 0.5, "→", ha="center", va="center", fontsize=16)
    kernel = ", ".join("[" + " ".join(f"{v:g}" for v in row) + "]" for row in params.kernel[0, 0])
    fig.suptitle(
        f"Residual block in numpy — output {steps['global_avg_pool'][0, 0]:.4f}\n"
        f"W = [{kernel}], stride {params.stride}, zero padding {params.padding}; "
        "conv is cross-correlation (kernel not flipped); max-pool floor mode",
        fontsize=10,
    )
    return fig


def conv_grad_figure(params: ConvGradParams, grad: ConvGradResult) -> Any:
    """The gradient exercise: X, W, Y, dL/dY, dL/dW, dL/dX side by side."""
    plt = pyplot()
    panels = [
        (params.image[0, 0], "X"),
        (params.kernel[0, 0], "W"),
        (grad.y, "Y = W ⋆ X (valid)"),
        (params.upstream_grad[0, 0], "dL/dY (given)"),
        (grad.dw, "dL/dW = X ⋆ dL/dY"),
        (grad.dx, "dL/dX = full conv of dL/dY with W"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(18, 3.8))
    for ax, (matrix, title) in zip(axes, panels, strict=True):
        _heatmap(ax, matrix, title, fmt="{:g}")
    fig.suptitle(
        f"Conv gradients: stride {params.stride}, padding {params.padding}, cross-correlation; "
        f"max |analytic − finite difference| = {grad.max_abs_error_vs_numeric:.2e}",
        fontsize=10,
    )
    return fig
