"""Training throughput: the project's loop against a conventional DataLoader pipeline.

Both train the same model with the same optimiser and batch size for the same number of
steps, in one run:

- project: `mobilenet_study.training.loop.train` as the pipeline runs it — the whole uint8
  dataset on the device, batched crop/flip/resize/normalise there, channels_last, bf16
  autocast on CUDA (timed over its training steps only);
- conventional: the usual public CIFAR-10 script — a Dataset of PIL images with per-sample
  RandomCrop(32, padding=4), RandomHorizontalFlip, (Resize,) ToTensor, Normalize in
  DataLoader worker processes, fp32, default memory format. `--same-numerics` gives it the
  project's channels_last and autocast instead, so that only the input pipeline differs.

    python benchmarks/train_throughput.py --model mobilenet_v1 --width 1.0 --resolution 1.0 \\
        --device cpu --data ../shared/data/cifar10-jpeg

Goals: ratio >= 1.3x on the 2-core CPU, >= 3x on one GPU.

It also prints how close the loop trains to the machine's limit: the achieved
FLOP/s, 3 x (2 x MACs) per image (forward, then backward for inputs and weights) times images
per second, as a fraction of the best dense-product rate torch reaches in the same run (a
matrix multiply or a 3x3 convolution, see `gemm_peaks`); with ``--bf16``, bare training steps
in fp32 and under bf16 autocast side by side.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mobilenet_study.data.image_folder import read_image_folder
from mobilenet_study.data.prepared import channel_stats, load_split
from mobilenet_study.grid import input_size
from mobilenet_study.models import build
from mobilenet_study.models.counting import measured_cost
from mobilenet_study.training.loop import train
from mobilenet_study.training.pipeline import DeviceDataset, Preprocess
from mobilenet_study.training.recipe import (
    PRECISIONS,
    TrainParams,
    device_name,
    make_optimizer,
)


def base_config(device: str, batch_size: int) -> TrainParams:
    """The recipe both sides train with (the rate does not change the speed)."""
    return TrainParams(
        device=device, epochs=1, batch_size=batch_size, lr=0.05, momentum=0.9, nesterov=True,
        weight_decay=5e-4, label_smoothing=0.1, warmup_epochs=0, crop_padding=4,
        train_subset=0, test_subset=0, eval_batch_size=1000, compile=False,
    )  # fmt: skip


def load_train_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A prepared folder (train.npz) or any image-folder mirror."""
    if (path / "train.npz").exists():
        return load_split(path, "train")
    splits, _ = read_image_folder(path)
    return splits["train"].images, splits["train"].labels


class PILDataset(Dataset):
    """What torchvision's CIFAR10 dataset does: one PIL image per item, transformed."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: object) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


@dataclass(frozen=True)
class Workload:
    """What both sides train on: the same images, recipe, input size and number of steps."""

    images: np.ndarray
    labels: np.ndarray
    config: TrainParams
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    steps: int
    warmup: int


def conventional(
    model: torch.nn.Module, work: Workload, workers: int, same_numerics: bool
) -> float:
    """Images per second of the DataLoader pipeline over ``steps`` steps after ``warmup``."""
    config, device = work.config, work.device
    ops = [
        transforms.RandomCrop(32, padding=config.crop_padding),
        transforms.RandomHorizontalFlip(),
    ]
    if work.size != 32:
        ops.append(transforms.Resize(work.size, antialias=True))
    ops += [transforms.ToTensor(), transforms.Normalize(work.mean, work.std)]
    loader = DataLoader(
        PILDataset(work.images, work.labels, transforms.Compose(ops)),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    memory_format = torch.channels_last if same_numerics else torch.contiguous_format
    model.to(device=device, memory_format=memory_format).train()
    optimizer = make_optimizer(model, config)
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=same_numerics and device.type == "cuda"
    )
    total = work.warmup + work.steps
    done, start = 0, 0.0
    while done < total:
        for x, y in loader:
            if done == work.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            with autocast:
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == total:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return work.steps * config.batch_size / (time.perf_counter() - start)


def project(model: torch.nn.Module, work: Workload) -> float:
    """Images per second of the project's loop: one warm-up epoch, then one timed epoch."""
    images, labels, device = work.images, work.labels, work.device
    preprocess = Preprocess.create(work.mean, work.std, work.size, device)
    test = DeviceDataset.from_arrays(images[:10], labels[:10], device)
    one_epoch = replace(work.config, epochs=1, warmup_epochs=0)
    for n_steps in (work.warmup, work.steps):
        subset = np.arange(n_steps * one_epoch.batch_size) % len(labels)
        data = DeviceDataset.from_arrays(images[subset], labels[subset], device)
        result = train(model, data, test, preprocess, one_epoch, progress=False)
    return result.images_trained / result.step_seconds


def _best_rate(
    call: Callable[[], object], flops: float, device: torch.device, seconds: float
) -> float:
    call()  # warm-up
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        call()
        calls += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return flops * calls / (time.perf_counter() - start)


def gemm_peaks(
    dtype: torch.dtype,
    device: torch.device,
    seconds: float = 1.0,
    sizes: tuple[int, ...] = (1024, 2048, 4096),
    channels: tuple[int, ...] = (128, 256, 512),
) -> dict[str, float]:
    """torch's best dense-product rates (FLOP/s) this run, by the two libraries it calls on
    the CPU: ``a @ b`` over square ``sizes`` (MKL for fp32), and a 3x3 convolution of
    ``channels`` -> ``channels`` on 8x8 maps, batch 128, channels_last (oneDNN's direct
    algorithm, checked with ONEDNN_VERBOSE: the FLOPs counted are the FLOPs done). On AMD
    CPUs MKL does not take its AVX-512 path, so its product can fall far below the
    convolutions' and a fraction of it exceed 100% (measured on a Zen 5: 195 against
    514 GFLOP/s)."""
    peaks = {"matmul": 0.0, "3x3 conv": 0.0}
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        product = _best_rate(partial(torch.matmul, a, b), 2 * n**3, device, seconds)
        peaks["matmul"] = max(peaks["matmul"], product)
    for c in channels if device.type == "cpu" else ():
        x = torch.randn(128, c, 8, 8).to(dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
        flops = 2 * 128 * c * c * 9 * 64
        conv = _best_rate(partial(F.conv2d, x, w, padding=1), flops, device, seconds)
        peaks["3x3 conv"] = max(peaks["3x3 conv"], conv)
    return {name: rate for name, rate in peaks.items() if rate}


def _peak_text(peaks: dict[str, float]) -> str:
    rates = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in peaks.items())
    return f"{max(peaks.values()) / 1e9:.1f} GFLOP/s (best of {rates})"


def step_rate(model: torch.nn.Module, work: Workload, dtype: torch.dtype | None) -> float:
    """Images per second of bare training steps on random input, under autocast to
    ``dtype`` (None: fp32): the precision's effect alone, no input pipeline."""
    device, batch = work.device, work.config.batch_size
    model.to(device=device, memory_format=torch.channels_last).train()
    optimizer = make_optimizer(model, work.config)
    x = torch.randn(batch, 3, work.size, work.size, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    start = 0.0
    for step in range(work.warmup + work.steps):
        if step == work.warmup:
            start = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return work.steps * batch / (time.perf_counter() - start)


def roofline(args: argparse.Namespace, work: Workload, images_per_s: float) -> None:
    """The loop's achieved FLOP/s (3 x the forward pass's 2 x MACs per image, times images per
    second) as a fraction of torch's dense-product peak measured now; with --bf16, the bare
    step's rate in fp32 and under bf16 autocast, and the bf16 peak."""
    macs = measured_cost(build(args.model, args.width), work.size).macs
    achieved = 6 * macs * images_per_s
    peaks = gemm_peaks(torch.float32, work.device)
    print(
        f"achieved: 6 x {macs / 1e6:.2f} M MACs x {images_per_s:,.0f} img/s = "
        f"{achieved / 1e9:.1f} GFLOP/s; fp32 peak {_peak_text(peaks)}; "
        f"fraction {achieved / max(peaks.values()):.0%}"
    )
    if args.bf16:
        torch.manual_seed(0)
        fp32 = step_rate(build(args.model, args.width), work, None)
        torch.manual_seed(0)
        bf16 = step_rate(build(args.model, args.width), work, torch.bfloat16)
        # Small sizes: without native bf16 units a 4096² bf16 product takes minutes.
        peaks_bf16 = gemm_peaks(torch.bfloat16, work.device, seconds=0.2, sizes=(256, 512, 1024))
        print(
            f"bare step, random input: fp32 {fp32:,.0f} img/s, bf16 autocast {bf16:,.0f} img/s "
            f"({bf16 / fp32:.2f}x); bf16 peak {_peak_text(peaks_bf16)}; "
            f"bf16 fraction {6 * macs * bf16 / max(peaks_bf16.values()):.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="mobilenet_v1")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--resolution", type=float, default=1.0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--data", type=Path, required=True, help="prepared folder or mirror")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument(
        "--same-numerics", action="store_true", help="conventional side uses our memory format"
    )
    parser.add_argument(
        "--bf16", action="store_true", help="also time bare steps under bf16 autocast"
    )
    parser.add_argument(
        "--no-conventional", action="store_true", help="the project loop and roofline only"
    )
    parser.add_argument("--compile", action="store_true", help="the project loop compiled")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="the project loop's train.precision"
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    images, labels = load_train_images(args.data)
    mean, std = channel_stats(images)
    size = input_size(args.resolution)
    config = replace(
        base_config(args.device, args.batch_size), compile=args.compile, precision=args.precision
    )

    print(
        f"{args.model} α={args.width} ρ={args.resolution} ({size}px), batch {args.batch_size}, "
        f"{args.steps} timed steps after {args.warmup}, device "
        f"{device_name(device)}, torch {torch.__version__}, {len(labels)} images; project loop: "
        f"compile {args.compile}, precision {args.precision}"
    )
    torch.manual_seed(0)
    work = Workload(images, labels, config, size, mean, std, device, args.steps, args.warmup)
    ours = project(build(args.model, args.width), work)
    print(f"project loop:            {ours:10,.0f} images/s", flush=True)
    roofline(args, work, ours)
    if args.no_conventional:
        return
    torch.manual_seed(0)
    theirs = conventional(build(args.model, args.width), work, args.workers, args.same_numerics)
    numerics = "same numerics" if args.same_numerics else "fp32, contiguous"
    print(f"DataLoader ({args.workers} workers, {numerics}): {theirs:10,.0f} images/s")
    print(f"ratio project/conventional: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
