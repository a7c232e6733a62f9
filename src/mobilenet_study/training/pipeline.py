"""The data pipeline of training: the prepared splits held on the training device as uint8, and
batched augmentation, resizing and normalisation there — no DataLoader, no per-sample Python
work (the approach of the fastest public CIFAR-10 trainers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mobilenet_study.data.prepared import load_split, read_stats
from mobilenet_study.data.resize import resize
from mobilenet_study.grid import Run
from mobilenet_study.training.recipe import TrainParams

# Subsets are drawn with this seed, not the run's: every run and seed trains and is tested on
# the same images, so that two runs' test predictions can be paired image by image.
SUBSET_SEED = 0
# The validation split (train.validation) is held out of the training images with its own seed.
VALIDATION_SEED = 1


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced random subset of ``size`` items (0 = all), sorted."""
    if size == 0 or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen = []
    for k, cls in enumerate(classes):
        members = np.flatnonzero(labels == cls)
        # Spread the remainder over the first classes so the total is exactly `size`.
        share = size // len(classes) + (1 if k < size % len(classes) else 0)
        chosen.append(rng.choice(members, size=min(share, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass
class DeviceDataset:
    """A split held on the training device as uint8 NCHW images and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(
        cls, images: np.ndarray, labels: np.ndarray, device: torch.device
    ) -> DeviceDataset:
        tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        return cls(tensor.contiguous().to(device), torch.from_numpy(labels).long().to(device))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Preprocess:
    """uint8 batch -> normalised float batch at the run's input size, on the device."""

    mean: torch.Tensor  # (1, 3, 1, 1), in [0, 1] units
    std: torch.Tensor
    input_size: int

    @classmethod
    def create(
        cls, mean: tuple[float, ...], std: tuple[float, ...], input_size: int, device: torch.device
    ) -> Preprocess:
        shape = (1, len(mean), 1, 1)
        return cls(
            torch.tensor(mean, device=device).view(shape),
            torch.tensor(std, device=device).view(shape),
            input_size,
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = resize(images.float().div_(255), self.input_size)
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


def augment(
    images: torch.Tensor,
    padding: int,
    generator: torch.Generator,
    flip: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random crop with zero padding, then a horizontal flip of the images ``flip`` marks (a
    fresh coin per image if None), batched, on uint8 images."""
    n, _, h, w = images.shape
    device = images.device
    if padding:
        padded = F.pad(images, (padding, padding, padding, padding))
        offsets = torch.randint(0, 2 * padding + 1, (2, n), device=device, generator=generator)
        rows = (offsets[0, :, None] + torch.arange(h, device=device))[:, None, :, None]
        cols = (offsets[1, :, None] + torch.arange(w, device=device))[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[batch, channels, rows, cols]
    if flip is None:
        flip = torch.rand(n, device=device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def load_subset(prepared_dir: str | Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A prepared split's images and labels, cut to the class-balanced subset of ``size`` (0 =
    all) that every run uses: the same images in the same order for every run and seed."""
    images, labels = load_split(prepared_dir, split)
    keep = stratified_subset(labels, size, SUBSET_SEED)
    return images[keep], labels[keep]


def split_validation(
    images: np.ndarray, labels: np.ndarray, size: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(training, validation): a class-balanced ``size`` images held out of a training split."""
    held = np.zeros(len(labels), dtype=bool)
    held[stratified_subset(labels, size, VALIDATION_SEED)] = True
    return (images[~held], labels[~held]), (images[held], labels[held])


@dataclass
class LoadedData:
    train: DeviceDataset
    test: DeviceDataset  # the test split, or the validation split when train.validation > 0
    preprocess: Preprocess
    content_hash: str
    evaluated_on: str  # "test" or "validation"


def load_dataset(
    prepared_dir: str | Path,
    config: TrainParams,
    run: Run,
    device: torch.device,
) -> LoadedData:
    """The prepared splits (subsets as configured) on ``device``, with their preprocessing.

    With ``train.validation`` > 0 that many training images (class-balanced) are held out and
    take the test split's place: for choosing a recipe, never for the study's numbers. The
    training subset, if any, is then drawn from the rest."""
    stats = read_stats(prepared_dir)
    if config.validation:
        images, labels = load_split(prepared_dir, "train")
        (images, labels), held_out = split_validation(images, labels, config.validation)
        keep = stratified_subset(labels, config.train_subset, SUBSET_SEED)
        train = DeviceDataset.from_arrays(images[keep], labels[keep], device)
        evaluated = DeviceDataset.from_arrays(*held_out, device)
    else:
        train = DeviceDataset.from_arrays(
            *load_subset(prepared_dir, "train", config.train_subset), device
        )
        evaluated = DeviceDataset.from_arrays(
            *load_subset(prepared_dir, "test", config.test_subset), device
        )
    preprocess = Preprocess.create(stats.mean, stats.std, run.input_size, device)
    evaluated_on = "validation" if config.validation else "test"
    return LoadedData(train, evaluated, preprocess, stats.content_hash, evaluated_on)
