"""Training throughput: the project's loop against a conventional DataLoader pipeline.

Both train the same model with the same optimiser and batch size for the same number of
steps, in one run:

- project: `mobilenet_study.train.train` as the pipeline runs it — the whole uint8 dataset on
  the device, batched crop/flip/resize/normalise there, channels_last, bf16 autocast on CUDA
  (timed over its training steps only);
- conventional: the usual public CIFAR-10 script — a Dataset of PIL images with per-sample
  RandomCrop(32, padding=4), RandomHorizontalFlip, (Resize,) ToTensor, Normalize in
  DataLoader worker processes, fp32, default memory format. `--same-numerics` gives it the
  project's channels_last and autocast instead, so that only the input pipeline differs.

    python benchmarks/train_throughput.py --model mobilenet_v1 --width 1.0 --resolution 1.0 \\
        --device cpu --data ../shared/data/cifar10-jpeg

Goals (issue 5): ratio >= 1.3x on the 2-core CPU, >= 3x on one GPU.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mobilenet_study import train
from mobilenet_study.data import channel_stats, load_split, read_image_folder
from mobilenet_study.grid import input_size
from mobilenet_study.models import build


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
    config: train.TrainParams
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
    optimizer = train.make_optimizer(model, config)
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
    preprocess = train.Preprocess.create(work.mean, work.std, work.size, device)
    test = train.DeviceDataset.from_arrays(images[:10], labels[:10], device)
    one_epoch = replace(work.config, epochs=1, warmup_epochs=0)
    for n_steps in (work.warmup, work.steps):
        subset = np.arange(n_steps * one_epoch.batch_size) % len(labels)
        data = train.DeviceDataset.from_arrays(images[subset], labels[subset], device)
        result = train.train(model, data, test, preprocess, one_epoch, progress=False)
    return result.images_trained / result.step_seconds


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
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    images, labels = load_train_images(args.data)
    mean, std = channel_stats(images)
    size = input_size(args.resolution)
    config = train.TrainParams(
        device=args.device, epochs=1, batch_size=args.batch_size, lr=0.05, momentum=0.9,
        nesterov=True, weight_decay=5e-4, label_smoothing=0.1, warmup_epochs=0, crop_padding=4,
        train_subset=0, test_subset=0, eval_batch_size=1000, compile=False,
    )  # fmt: skip

    print(
        f"{args.model} α={args.width} ρ={args.resolution} ({size}px), batch {args.batch_size}, "
        f"{args.steps} timed steps after {args.warmup}, device "
        f"{train.device_name(device)}, torch {torch.__version__}, {len(labels)} images"
    )
    torch.manual_seed(0)
    work = Workload(images, labels, config, size, mean, std, device, args.steps, args.warmup)
    ours = project(build(args.model, args.width), work)
    print(f"project loop:            {ours:10,.0f} images/s", flush=True)
    torch.manual_seed(0)
    theirs = conventional(build(args.model, args.width), work, args.workers, args.same_numerics)
    numerics = "same numerics" if args.same_numerics else "fp32, contiguous"
    print(f"DataLoader ({args.workers} workers, {numerics}): {theirs:10,.0f} images/s")
    print(f"ratio project/conventional: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
