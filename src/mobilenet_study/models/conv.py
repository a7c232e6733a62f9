"""The models' convolution: nn.Conv2d, computed as unfold + matrix multiply where the CPU's
convolution kernels are slowest.

oneDNN's weight-gradient kernel (PyTorch's CPU convolutions) is many times slower than the
forward pass, and than unfold + matmul, when the output map has only a few pixels (1×1 and
2×2; benchmarks/conv_small_maps.py, results in benchmarks/results/). The baseline CNN's
widest layers sit on such maps (1×1 to 2×2 at ρ = 0.5 and 1), so they were most
of its training time. On 4×4 maps and larger oneDNN is as fast or faster, so only maps of at
most :attr:`Conv2d.gemm_max_pixels` pixels take the other path, and only when training on the
CPU: the result is the same convolution (up to float rounding), evaluation and export keep the
plain kernel, and CUDA keeps cuDNN. benchmarks/conv_small_maps.py measures both side by side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, same state dict) with the small-map path described above."""

    # Output maps of at most this many pixels train as unfold + matmul on the CPU; 0 = never.
    gemm_max_pixels = 4

    def _conv_forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self._use_gemm(x, bias):
            return self._gemm_forward(x, weight)
        return super()._conv_forward(x, weight, bias)

    def output_side(self, x: torch.Tensor) -> tuple[int, int]:
        """(height, width) of this conv's output for input ``x``."""
        sides = []
        for size, kernel, stride, pad in zip(
            x.shape[-2:], self.kernel_size, self.stride, self.padding, strict=True
        ):
            sides.append((size + 2 * pad - kernel) // stride + 1)
        return sides[0], sides[1]

    def _use_gemm(self, x: torch.Tensor, bias: torch.Tensor | None) -> bool:
        if not (self.training and torch.is_grad_enabled() and x.device.type == "cpu"):
            return False
        plain = (
            bias is None
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and self.dilation == (1, 1)
        )
        height, width = self.output_side(x)
        return plain and height * width <= self.gemm_max_pixels

    def _gemm_forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        height, width = self.output_side(x)
        # (n, C·kh·kw, L): each output pixel's receptive field as a column.
        columns = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        groups, out_channels = self.groups, self.out_channels
        if groups == 1:
            out = torch.matmul(weight.reshape(out_channels, -1), columns)
        else:
            columns = columns.view(n, groups, -1, height * width)
            kernels = weight.reshape(groups, out_channels // groups, -1)
            out = torch.einsum("gok,ngkl->ngol", kernels, columns)
        out = out.reshape(n, out_channels, height, width)
        return out.contiguous(memory_format=torch.channels_last)
