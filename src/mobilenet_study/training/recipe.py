"""params.yaml `train:` — the recipe shared by every run — and what it sets up: the device,
the seed, SGD over the right parameter groups, and the learning-rate schedule."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from mobilenet_study import params as p

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainParams:
    """params.yaml `train:` — the recipe shared by every run of the grid."""

    device: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    warmup_epochs: float
    crop_padding: int
    train_subset: int
    test_subset: int
    eval_batch_size: int
    compile: bool

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainParams:
        s = "train"
        p.known_keys(params, s, [field.name for field in fields(cls)])
        config = cls(
            device=p.choice(params, f"{s}.device", DEVICES),
            epochs=p.integer(params, f"{s}.epochs", low=1),
            batch_size=p.integer(params, f"{s}.batch_size", low=1),
            lr=p.number(params, f"{s}.lr", low=0.0, low_inclusive=False),
            momentum=p.number(params, f"{s}.momentum", low=0.0, high=1.0),
            nesterov=p.boolean(params, f"{s}.nesterov"),
            weight_decay=p.number(params, f"{s}.weight_decay", low=0.0),
            label_smoothing=p.number(params, f"{s}.label_smoothing", low=0.0, high=0.99),
            warmup_epochs=p.number(params, f"{s}.warmup_epochs", low=0.0),
            crop_padding=p.integer(params, f"{s}.crop_padding", low=0, high=16),
            train_subset=p.integer(params, f"{s}.train_subset", low=0),
            test_subset=p.integer(params, f"{s}.test_subset", low=0),
            eval_batch_size=p.integer(params, f"{s}.eval_batch_size", low=1),
            compile=p.boolean(params, f"{s}.compile"),
        )
        if config.nesterov and config.momentum == 0:
            raise p.ParamError(f"{s}.momentum", 0, "Nesterov momentum needs train.momentum > 0")
        if config.warmup_epochs > config.epochs:
            raise p.ParamError(
                f"{s}.warmup_epochs",
                config.warmup_epochs,
                f"must not exceed train.epochs ({config.epochs}): the rate would never decay",
            )
        return config


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU with a one-line warning and all cores
    (OMP_NUM_THREADS, when set, says how many: queued shards share the cores)."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise p.ParamError("train.device", "cuda", "CUDA is not available here; use auto or cpu")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if requested == "auto" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
        print(
            f"warning: no CUDA device; training on the CPU with {torch.get_num_threads()} threads",
            file=sys.stderr,
        )
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def seed_everything(seed: int, device: torch.device) -> None:
    """Same params and seed on the CPU give identical results."""
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only: none on BN parameters, biases, and
    depthwise filters, which have so few parameters that decay only hurts (MobileNet §3.2)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            depthwise = (
                isinstance(module, nn.Conv2d)
                and module.groups > 1
                and module.groups == module.in_channels
            )
            is_weight = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            (decay if is_weight and not depthwise else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: TrainParams) -> torch.optim.SGD:
    """SGD with (Nesterov) momentum over :func:`parameter_groups`, at the peak rate."""
    return torch.optim.SGD(
        parameter_groups(model, config.weight_decay),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to the peak rate, then cosine decay to zero."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_schedule(
    optimizer: torch.optim.Optimizer, config: TrainParams, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`lr_factor` over the whole run, stepped once per batch."""
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps)
    )
