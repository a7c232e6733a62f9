"""numpy_cnn against torch.nn.functional (the reference), autograd and finite differences."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilenet_study import numpy_cnn
from mobilenet_study.residual_exercise import numeric_gradients


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    f = draw(st.integers(1, 4))
    kh = draw(st.integers(1, 4))
    kw = draw(st.integers(1, 4))
    padding = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), 9))
    w = draw(st.integers(max(1, kw - 2 * padding), 9))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((n, c, h, w)),
        "w": rng.standard_normal((f, c, kh, kw)),
        "b": rng.standard_normal(f),
        "stride": stride,
        "padding": padding,
    }


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_conv2d_matches_torch(case: dict) -> None:
    ours = numpy_cnn.conv2d(case["x"], case["w"], case["b"], case["stride"], case["padding"])
    ref = F.conv2d(
        t(case["x"]), t(case["w"]), t(case["b"]), stride=case["stride"], padding=case["padding"]
    )
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(conv_cases())
def test_conv2d_backward_matches_autograd(case: dict) -> None:
    x = t(case["x"]).requires_grad_()
    w = t(case["w"]).requires_grad_()
    b = t(case["b"]).requires_grad_()
    y = F.conv2d(x, w, b, stride=case["stride"], padding=case["padding"])
    dy = torch.randn_like(y, dtype=torch.float64)
    y.backward(dy)
    dx, dw, db = numpy_cnn.conv2d_backward(
        case["x"], case["w"], dy.numpy(), case["stride"], case["padding"]
    )
    np.testing.assert_allclose(dx, x.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, w.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, b.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv2d_backward_matches_finite_differences(stride: int, padding: int) -> None:
    rng = np.random.default_rng(stride * 10 + padding)
    x = rng.standard_normal((2, 2, 6, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    out = numpy_cnn.conv2d(x, w, stride=stride, padding=padding)
    dy = rng.standard_normal(out.shape)
    dx, dw, _ = numpy_cnn.conv2d_backward(x, w, dy, stride=stride, padding=padding)
    dx_num, dw_num = numeric_gradients(x, w, dy, stride, padding)
    np.testing.assert_allclose(dx, dx_num, atol=1e-7)
    np.testing.assert_allclose(dw, dw_num, atol=1e-7)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    h=st.integers(2, 11),
    w=st.integers(2, 11),
    size=st.integers(1, 3),
    stride=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_pooling_and_relu_match_torch(
    n: int, c: int, h: int, w: int, size: int, stride: int, seed: int
) -> None:
    size = min(size, h, w)
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    np.testing.assert_array_equal(
        numpy_cnn.max_pool2d(x, size, stride), F.max_pool2d(t(x), size, stride).numpy()
    )
    np.testing.assert_array_equal(numpy_cnn.relu(x), F.relu(t(x)).numpy())
    np.testing.assert_allclose(
        numpy_cnn.global_avg_pool(x),
        F.adaptive_avg_pool2d(t(x), 1).flatten(1).numpy(),
        rtol=1e-12,
        atol=1e-15,
    )


def test_residual_block_matches_torch_composition() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 9))
    w = rng.standard_normal((3, 3, 3, 3))
    steps = numpy_cnn.residual_block(x, w)
    xt, wt = t(x), t(w)
    expected = F.relu(F.relu(F.conv2d(xt, wt, padding=1)) + xt)
    expected = F.adaptive_avg_pool2d(F.max_pool2d(expected, 2, 2), 1).flatten(1)
    assert list(steps) == [
        "input",
        "conv",
        "relu",
        "skip_add",
        "skip_relu",
        "max_pool",
        "global_avg_pool",
    ]
    np.testing.assert_allclose(steps["global_avg_pool"], expected.numpy(), rtol=1e-12)


def test_integer_input_is_computed_in_float64() -> None:
    x = np.arange(16).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 3, 3), dtype=np.int64)
    y = numpy_cnn.conv2d(x, w)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0, 0], [[45.0, 54.0], [81.0, 90.0]])


def test_float32_stays_float32() -> None:
    x = np.ones((1, 2, 5, 5), dtype=np.float32)
    w = np.ones((1, 2, 3, 3), dtype=np.float32)
    assert numpy_cnn.conv2d(x, w).dtype == np.float32


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "message"),
    [
        ((1, 3, 5, 5), (2, 4, 3, 3), {}, r"channel mismatch.*\(1, 3, 5, 5\).*\(2, 4, 3, 3\)"),
        ((1, 1, 2, 2), (1, 1, 3, 3), {}, r"larger than the padded input.*\(1, 1, 2, 2\)"),
        ((1, 1, 5, 5), (1, 1, 3, 3), {"stride": 0}, "stride must be a positive integer"),
        ((1, 1, 5, 5), (1, 1, 3, 3), {"padding": -1}, "padding must be a non-negative"),
        ((5, 5), (1, 1, 3, 3), {}, r"x must have 4 dimensions, got shape \(5, 5\)"),
    ],
)
def test_bad_shapes_raise_value_error_naming_them(
    x_shape: tuple, w_shape: tuple, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        numpy_cnn.conv2d(np.zeros(x_shape), np.zeros(w_shape), **kwargs)


def test_backward_rejects_wrong_upstream_shape() -> None:
    with pytest.raises(ValueError, match=r"dy has shape \(1, 1, 3, 3\), expected \(1, 1, 2, 2\)"):
        numpy_cnn.conv2d_backward(
            np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3))
        )


def test_residual_block_rejects_shape_changing_conv() -> None:
    with pytest.raises(ValueError, match="skip connection"):
        numpy_cnn.residual_block(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=0)


def test_pool_larger_than_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="pool size 3 is larger"):
        numpy_cnn.max_pool2d(np.zeros((1, 1, 2, 5)), size=3)


def test_numpy_cnn_does_not_import_torch() -> None:
    code = (
        "import sys, mobilenet_study.numpy_cnn, mobilenet_study.residual_exercise;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
