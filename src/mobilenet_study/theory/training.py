"""Short SGD runs on real CIFAR-10 training images, logged for the theory's curves.

No augmentation and a constant rate: the curves compare networks and initialisations under one
recipe, they are not tuned for accuracy. Every ``log_every`` steps the log holds the mean
training loss and training error (on the batches just trained on) and the mean norm of the
first conv layer's weight gradient: how much gradient reaches the bottom of the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mobilenet_study.data.resize import resize
from mobilenet_study.theory.config import Schedule
from mobilenet_study.theory.nets import DeepCNN


@dataclass(frozen=True)
class TrainingImages:
    """uint8 training images (N, 3, 32, 32) and labels in memory, resized to ``input_size``
    (theory.input_size) and normalised with the dataset's channel statistics batch by batch."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor  # (1, 3, 1, 1), in [0, 1] units
    std: torch.Tensor
    input_size: int = 32

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: np.ndarray,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        input_size: int = 32,
    ) -> TrainingImages:
        """From uint8 (N, 32, 32, 3) images, as the prepared data holds them."""
        tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        shape = (1, len(mean), 1, 1)
        return cls(
            tensor,
            torch.from_numpy(labels).long(),
            torch.tensor(mean).view(shape),
            torch.tensor(std).view(shape),
            input_size,
        )

    def normalised(self, index: torch.Tensor) -> torch.Tensor:
        return (resize(self.images[index].float() / 255, self.input_size) - self.mean) / self.std

    def sample(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` distinct images drawn with ``seed``, normalised, and their labels."""
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(self.labels), generator=generator)[:size]
        return self.normalised(index), self.labels[index]

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, len(self.labels), (size,), generator=generator)
        return self.normalised(index), self.labels[index]


def sgd_run(
    model: DeepCNN, data: TrainingImages, schedule: Schedule, seed: int, momentum: float = 0.9
) -> pd.DataFrame:
    """Train ``model`` for ``schedule.steps`` steps; the log, one row per ``log_every`` steps
    (step, train_loss, train_error, first_layer_grad_norm). A loss that stops being finite
    ends the run; its row says so (train_loss inf or nan)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=momentum)
    first = model.convs()[0]
    model.train()
    rows, window = [], []
    for step in range(1, schedule.steps + 1):
        x, y = data.batch(schedule.batch_size, generator)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad = first.weight.grad
        window.append(
            (
                loss.item(),
                (logits.argmax(1) != y).float().mean().item(),
                0.0 if grad is None else grad.norm().item(),
            )
        )
        finite = math.isfinite(window[-1][0])
        if finite:
            optimizer.step()
        if step % schedule.log_every == 0 or not finite or step == schedule.steps:
            losses, errors, norms = zip(*window, strict=True)
            rows.append(
                {
                    "step": step,
                    "train_loss": float(np.mean(losses)),
                    "train_error": float(np.mean(errors)),
                    "first_layer_grad_norm": float(np.mean(norms)),
                }
            )
            window = []
        if not finite:
            break
    return pd.DataFrame(rows)
