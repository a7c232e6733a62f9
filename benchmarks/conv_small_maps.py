"""Convolutions on tiny maps: PyTorch's CPU kernel (oneDNN) against unfold + matmul, side by
side in one run (mobilenet_study.models.conv).

1. One 3x3 convolution at batch 256, channels_last: forward, input gradient and weight gradient
   with oneDNN, and forward + backward through unfold + matmul (autograd).
2. Whole training steps (random input, SGD) of the models that have such layers, with the
   small-map path off (``Conv2d.gemm_max_pixels = 0``) and on.

    python benchmarks/conv_small_maps.py
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mobilenet_study import allocator
from mobilenet_study.grid import input_size
from mobilenet_study.models import build
from mobilenet_study.models.conv import Conv2d

# (batch, channels in, side of the map, channels out): the baseline CNN's widest layers.
LAYERS = ((256, 1024, 1, 1024), (256, 512, 2, 512), (256, 1024, 2, 1024), (256, 512, 4, 512))
MODELS = (("baseline", 1.0, 0.5), ("baseline", 1.0, 1.0), ("baseline", 0.5, 0.5))


def per_call_ms(fn: Callable[[], object], seconds: float = 1.0) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e3


def layer_row(batch: int, channels: int, side: int, out_channels: int) -> None:
    x = torch.randn(batch, channels, side, side).contiguous(memory_format=torch.channels_last)
    w = torch.randn(out_channels, channels, 3, 3)
    g = torch.randn(batch, out_channels, side, side).contiguous(memory_format=torch.channels_last)

    def backward(mask: list[bool]) -> object:
        return torch.ops.aten.convolution_backward(
            g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
        )

    forward = per_call_ms(lambda: F.conv2d(x, w, padding=1))
    grad_input = per_call_ms(lambda: backward([True, False, False]))
    grad_weight = per_call_ms(lambda: backward([False, True, False]))
    conv = Conv2d(channels, out_channels, 3, padding=1, bias=False)
    xg = x.clone().requires_grad_()

    def unfold_step() -> None:
        conv(xg).backward(g)

    unfold = per_call_ms(unfold_step)
    onednn = forward + grad_input + grad_weight
    print(
        f"  {channels:5d} -> {out_channels:5d} on {side}x{side}: oneDNN fwd {forward:7.1f}, "
        f"grad in {grad_input:7.1f}, grad w {grad_weight:7.1f} = {onednn:7.1f} ms; "
        f"unfold + matmul {unfold:7.1f} ms; ratio {unfold / onednn:.2f}x"
    )


def step_rate(model_name: str, width: float, resolution: float, steps: int) -> float:
    torch.manual_seed(0)
    model = build(model_name, width).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    size = input_size(resolution)
    x = torch.randn(128, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    start = 0.0
    for step in range(2 + steps):
        if step == 2:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * 128 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per side")
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    allocator.keep_freed_memory()
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print("one 3x3 convolution, batch 256, forward + both gradients:")
    for layer in LAYERS:
        layer_row(*layer)
    print("training steps, batch 128, random input:")
    for name, width, resolution in MODELS:
        rates = {}
        for max_pixels in (0, Conv2d.gemm_max_pixels):
            previous, Conv2d.gemm_max_pixels = Conv2d.gemm_max_pixels, max_pixels
            try:
                rates[max_pixels] = step_rate(name, width, resolution, args.steps)
            finally:
                Conv2d.gemm_max_pixels = previous
        plain, ours = rates.values()
        print(
            f"  {name} α={width} ρ={resolution}: oneDNN everywhere {plain:7.1f} img/s, "
            f"unfold + matmul on maps <= {Conv2d.gemm_max_pixels} px {ours:7.1f} img/s, "
            f"ratio {ours / plain:.2f}x"
        )


if __name__ == "__main__":
    main()
