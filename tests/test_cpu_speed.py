"""The two CPU training fixes: glibc keeps freed memory, and convolutions on tiny maps train as
unfold + matmul. Each is checked against the thing it replaces."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mobilenet_study import allocator
from mobilenet_study.models import build
from mobilenet_study.models.conv import Conv2d

# Allocate, fill and free a 64 MiB buffer 20 times (bytes: plain malloc, no huge pages, unlike
# numpy's madvise); print the minor page faults it took.
FAULTS_PROBE = """
import resource
from mobilenet_study import allocator
allocator.keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    buffer = b"\\x01" * (1 << 26)
    del buffer
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(setting: str) -> int:
    env = dict(os.environ, **{allocator.OPT_OUT_VARIABLE: setting})
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_PROBE], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    # glibc's defaults map a 64 MiB buffer anew on each allocation (16,384 pages of 4 KiB,
    # each faulted in on first touch): 20 rounds take at least 20 x 16,384 faults.
    pages = (1 << 26) // 4096
    assert _faults("default") >= 20 * pages * 0.9
    # Kept: the pages are faulted in once and reused.
    assert _faults("project") <= 2 * pages


def test_opting_out_leaves_glibc_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.OPT_OUT_VARIABLE, "default")
    assert allocator._apply() is False


def _pair(**kwargs: int) -> tuple[Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    ours = Conv2d(bias=False, **kwargs)
    plain = nn.Conv2d(bias=False, **kwargs)
    plain.load_state_dict(ours.state_dict())
    return ours, plain


@pytest.mark.parametrize(
    ("channels", "groups", "kernel", "stride", "side"),
    [
        (16, 1, 3, 1, 1),  # 3x3 on a 1x1 map: only the centre tap meets the image
        (16, 1, 3, 1, 2),
        (16, 1, 3, 2, 4),  # stride 2 to a 2x2 map
        (16, 1, 1, 1, 2),  # pointwise
        (16, 16, 3, 1, 2),  # depthwise
        (16, 16, 3, 2, 3),
    ],
)
def test_small_map_path_equals_torch_convolution(
    channels: int, groups: int, kernel: int, stride: int, side: int
) -> None:
    ours, plain = _pair(
        in_channels=channels,
        out_channels=2 * channels if groups == 1 else channels,
        kernel_size=kernel,
        stride=stride,
        padding=kernel // 2,
        groups=groups,
    )
    x = torch.randn(5, channels, side, side).contiguous(memory_format=torch.channels_last)
    assert ours._use_gemm(x, None), "the case must take the unfold + matmul path"
    x_ours, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours, y_plain = ours(x_ours), plain(x_plain)
    torch.testing.assert_close(y_ours, y_plain, rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(y_plain)
    y_ours.backward(upstream)
    y_plain.backward(upstream)
    torch.testing.assert_close(x_ours.grad, x_plain.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)


def test_large_maps_evaluation_and_no_grad_keep_the_plain_kernel() -> None:
    conv = Conv2d(8, 8, 3, padding=1, bias=False)
    assert not conv._use_gemm(torch.randn(2, 8, 3, 3), None)  # 9 output pixels > 4
    small = torch.randn(2, 8, 2, 2)
    assert conv._use_gemm(small, None)
    with torch.no_grad():
        assert not conv._use_gemm(small, None)
    assert not conv.eval()._use_gemm(small, None)


def test_a_model_trains_the_same_with_either_path() -> None:
    """The baseline at 16 px (its widest layers on 1x1 and 2x2 maps): loss and every gradient
    equal those of the plain kernel."""
    torch.manual_seed(0)
    model = build("baseline", 0.25).train()
    x = torch.randn(4, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3])

    def gradients(max_pixels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        previous, Conv2d.gemm_max_pixels = Conv2d.gemm_max_pixels, max_pixels
        try:
            loss = F.cross_entropy(model(x), y)
        finally:
            Conv2d.gemm_max_pixels = previous
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    loss_gemm, grads_gemm = gradients(4)
    loss_plain, grads_plain = gradients(0)
    torch.testing.assert_close(loss_gemm, loss_plain)
    for a, b in zip(grads_gemm, grads_plain, strict=True):
        # Float sums in another order: equal up to rounding, relative to the gradient's scale.
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * b.abs().max().item())
