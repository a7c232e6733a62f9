"""A convolutional residual block in numpy alone: the assignment's hand-built exercise.

Conventions match PyTorch so that ``torch.nn.functional`` can serve as the reference in tests:
NCHW layout; convolution is cross-correlation (the kernel is not flipped) with zero padding;
pooling uses floor mode (windows that would run past the edge are dropped). No torch import here.

Everything is vectorised: a strided window view of the padded input becomes an im2col matrix
that one BLAS-backed matrix product contracts with the kernel; the input gradient loops only
over the KH x KW kernel offsets, never over pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _as_float(a: np.ndarray, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


def _check_geometry(x_shape: tuple, w_shape: tuple, stride: int, padding: int) -> tuple[int, int]:
    """Validate a convolution's shapes and return the output height and width."""
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
    _, c, h, w = x_shape
    _, wc, kh, kw = w_shape
    if c != wc:
        raise ValueError(
            f"channel mismatch: input x has shape {x_shape} ({c} channels), "
            f"kernel w has shape {w_shape} ({wc} input channels)"
        )
    if kh > h + 2 * padding or kw > w + 2 * padding:
        raise ValueError(
            f"kernel {kh}x{kw} (w shape {w_shape}) is larger than the padded input "
            f"{h + 2 * padding}x{w + 2 * padding} (x shape {x_shape}, padding {padding})"
        )
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


def _windows(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """A (N, C, H', W', KH, KW) view of every receptive field of the zero-padded input."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int = 1,
    padding: int = 0,
) -> np.ndarray:
    """2-D cross-correlation: x (N, C, H, W), w (F, C, KH, KW), b (F,) -> (N, F, H', W')."""
    x = _as_float(x, "x", 4)
    w = _as_float(w, "w", 4)
    _check_geometry(x.shape, w.shape, stride, padding)
    windows = _windows(x, w.shape[2], w.shape[3], stride, padding)
    n, c, out_h, out_w, kh, kw = windows.shape
    # im2col as (N, C·KH·KW, H'·W'): the copy runs along contiguous rows of x, and one batched
    # GEMM with the (F, C·KH·KW) kernel matrix lands directly in NCHW order.
    cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, out_h * out_w)
    y = (w.reshape(w.shape[0], -1) @ cols).reshape(n, w.shape[0], out_h, out_w)
    if b is not None:
        b = np.asarray(b)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
        y += b.reshape(1, -1, 1, 1)
    return y


def conv2d_backward(
    x: np.ndarray,
    w: np.ndarray,
    dy: np.ndarray,
    stride: int = 1,
    padding: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss L through ``conv2d``: given dL/dy, return (dL/dx, dL/dw, dL/db)."""
    x = _as_float(x, "x", 4)
    w = _as_float(w, "w", 4)
    dy = _as_float(dy, "dy", 4)
    out_h, out_w = _check_geometry(x.shape, w.shape, stride, padding)
    expected = (x.shape[0], w.shape[0], out_h, out_w)
    if dy.shape != expected:
        raise ValueError(
            f"dy has shape {dy.shape}, expected {expected} for x {x.shape} and w {w.shape}"
        )
    kh, kw = w.shape[2], w.shape[3]
    windows = _windows(x, kh, kw, stride, padding)
    db = dy.sum(axis=(0, 2, 3))
    # dL/dw[f,c,i,j] = sum over n, output pixels of dy[n,f,p,q] * x_pad[n,c,p*s+i,q*s+j].
    dw = np.tensordot(dy, windows, axes=([0, 2, 3], [0, 2, 3]))
    # dL/dx: every output pixel sends dy * w back to the input pixels it read, one kernel
    # offset (i, j) at a time; the padded border is cropped off at the end.
    n, c, h, wid = x.shape
    dx_pad = np.zeros((n, c, h + 2 * padding, wid + 2 * padding), dtype=np.result_type(dy, w))
    for i in range(kh):
        for j in range(kw):
            contrib = np.tensordot(dy, w[:, :, i, j], axes=([1], [0]))  # (N, H', W', C)
            dx_pad[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride] += (
                contrib.transpose(0, 3, 1, 2)
            )
    dx = dx_pad[:, :, padding : padding + h, padding : padding + wid]
    return np.ascontiguousarray(dx), dw, db


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def max_pool2d(x: np.ndarray, size: int = 2, stride: int = 2) -> np.ndarray:
    """Max pooling over size x size windows, floor mode (like ``F.max_pool2d``'s default)."""
    x = _as_float(x, "x", 4)
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be positive, got size={size}, stride={stride}")
    if size > x.shape[2] or size > x.shape[3]:
        raise ValueError(f"pool size {size} is larger than the input, x shape {x.shape}")
    windows = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(4, 5))


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """Mean over height and width: (N, C, H, W) -> (N, C)."""
    return _as_float(x, "x", 4).mean(axis=(2, 3))


def residual_block(
    x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 1
) -> dict[str, np.ndarray]:
    """Run conv -> ReLU -> + input (skip) -> ReLU -> 2x2/2 max-pool -> global average pool.

    Returns every intermediate, in order, keyed by step name. The skip connection needs the
    convolution to keep the input's shape (same channels, stride 1, "same" padding).
    """
    x = _as_float(x, "x", 4)
    conv = conv2d(x, w, stride=stride, padding=padding)
    if conv.shape != x.shape:
        raise ValueError(
            f"the skip connection adds the input {x.shape} to the convolution output "
            f"{conv.shape}: their shapes must match (w shape {np.shape(w)}, stride {stride}, "
            f"padding {padding})"
        )
    steps: dict[str, np.ndarray] = {"input": x, "conv": conv}
    steps["relu"] = relu(conv)
    steps["skip_add"] = steps["relu"] + x
    steps["skip_relu"] = relu(steps["skip_add"])
    steps["max_pool"] = max_pool2d(steps["skip_relu"], size=2, stride=2)
    steps["global_avg_pool"] = global_avg_pool(steps["max_pool"])
    return steps
