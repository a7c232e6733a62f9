"""params.yaml `train:` — the recipe shared by every run — and what it sets up: the device,
the seed, SGD over the right parameter groups, and the learning-rate schedule."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from mobilenet_study import params as p
from mobilenet_study.machine import has_native_bf16

DEVICES = ("auto", "cpu", "cuda")
# Learning-rate shapes after the linear warm-up: both decay to zero at the last step. A
# one-cycle schedule is `linear` with a long warm-up (e.g. 0.25 of the epochs).
SCHEDULES = ("cosine", "linear")
# Horizontal flips: a fresh coin per image and epoch, or airbench's alternating flips (a coin
# per image in the first epoch, then every image flipped the other way each epoch after).
FLIPS = ("random", "alternating")
TTAS = ("none", "flip")  # test-time augmentation: none, or the mean of image and its mirror
# Which parameters get weight decay: `dense` = conv and linear weights but not depthwise
# filters (MobileNet §3.2); `weights` = every conv and linear weight; `all` = everything.
DECAY_SCOPES = ("dense", "weights", "all")
# A run saves itself at most this many minutes apart (what an interruption may lose), and no
# more often than the lower bound: on a GPU an epoch takes seconds, and a checkpoint of the
# baseline at α = 1 is hundreds of MB.
MIN_CHECKPOINT_MINUTES, MAX_CHECKPOINT_MINUTES = 1.0, 10.0
# Training precision. `auto`: bf16 autocast on CUDA; on a CPU, bf16 only where it computes bf16
# in hardware (AVX-512 BF16, AMX) and only for models without depthwise convolutions, which
# bf16 slows down there; fp32 otherwise. Evaluation is always fp32.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class CheckpointParams(p.Section):
    """params.yaml `checkpoint:` — how often a run saves itself, in minutes. Its own section,
    which the training stages do not list in dvc.yaml: it changes when a run is saved, not what
    it computes, so changing it must not rerun the grid."""

    SECTION = "checkpoint"

    minutes: float = p.setting(low=MIN_CHECKPOINT_MINUTES, high=MAX_CHECKPOINT_MINUTES)


@dataclass(frozen=True)
class TrainParams(p.Section):
    """params.yaml `train:` — the recipe shared by every run of the grid.

    The defaults serve recipes built in code (benchmarks/); params.yaml must give every key.
    """

    SECTION = "train"

    device: str = p.setting(choices=DEVICES)
    epochs: int = p.setting(low=1)
    batch_size: int = p.setting(low=1)
    lr: float = p.setting(low=0.0, low_inclusive=False)
    momentum: float = p.setting(low=0.0, high=1.0)
    nesterov: bool
    weight_decay: float = p.setting(low=0.0)
    label_smoothing: float = p.setting(low=0.0, high=0.99)
    warmup_epochs: float = p.setting(low=0.0)
    crop_padding: int = p.setting(low=0, high=16)
    train_subset: int = p.setting(low=0)
    test_subset: int = p.setting(low=0)
    eval_batch_size: int = p.setting(low=1)
    compile: bool
    validation: int = p.setting(low=0, high=25_000, default=0, required=True)
    schedule: str = p.setting(choices=SCHEDULES, default="cosine", required=True)
    ema_decay: float = p.setting(low=0.0, high=0.9999, default=0.0, required=True)
    bn_momentum: float = p.setting(
        low=0.0, high=1.0, low_inclusive=False, default=0.1, required=True
    )
    flip: str = p.setting(choices=FLIPS, default="random", required=True)
    tta: str = p.setting(choices=TTAS, default="none", required=True)
    weight_decay_scope: str = p.setting(choices=DECAY_SCOPES, default="dense", required=True)
    precision: str = p.setting(choices=PRECISIONS, default="fp32", required=True)
    # From `checkpoint.minutes`, five when params.yaml has no `checkpoint:` section.
    checkpoint_minutes: float = p.setting(default=5.0, from_section=False)

    def checked(self, params: Mapping[str, Any], key: str) -> TrainParams:
        """The checkpoint interval filled in; Nesterov and the warm-up checked against the
        settings they depend on."""
        config = self
        if CheckpointParams.SECTION in params:
            minutes = CheckpointParams.from_params(params).minutes
            config = replace(self, checkpoint_minutes=minutes)
        if config.nesterov and config.momentum == 0:
            raise p.ParamError(f"{key}.momentum", 0, "Nesterov momentum needs train.momentum > 0")
        if config.warmup_epochs > config.epochs:
            raise p.ParamError(
                f"{key}.warmup_epochs",
                config.warmup_epochs,
                f"must not exceed train.epochs ({config.epochs}): the rate would never decay",
            )
        return config


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def recipe_fingerprint(config: TrainParams) -> str:
    """A short hash of the recipe: a run's metrics record it, so that a finished run can be
    told from one trained with another recipe (mobilenet_study.status)."""
    return fingerprint(recipe_fields(config))


def recipe_fields(config: TrainParams) -> dict[str, Any]:
    """The settings that decide what a run computes (not how often it is saved)."""
    kept = [f.name for f in fields(config) if f.name != "checkpoint_minutes"]
    return {name: getattr(config, name) for name in kept}


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU with a one-line warning and all cores
    (OMP_NUM_THREADS, when set, says how many: queued shards share the cores)."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise p.ParamError("train.device", "cuda", "CUDA is not available here; use auto or cpu")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        # Every training shape is fixed (batch, input side), so cuDNN's autotuner picks each
        # conv's fastest algorithm once and keeps it.
        torch.backends.cudnn.benchmark = True
        return torch.device("cuda")
    if requested == "auto" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
        print(
            f"warning: no CUDA device; training on the CPU with {torch.get_num_threads()} threads",
            file=sys.stderr,
        )
    return torch.device("cpu")


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise conv: one filter per input channel."""
    return (
        isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
    )


def has_depthwise(model: nn.Module) -> bool:
    return any(is_depthwise(m) for m in model.modules())


def resolve_precision(requested: str, device: torch.device, model: nn.Module) -> str:
    """fp32 or bf16, as :data:`PRECISIONS` says for ``requested`` on this device and model."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16"
    return "bf16" if has_native_bf16() and not has_depthwise(model) else "fp32"


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def seed_everything(seed: int) -> None:
    """Same params and seed on the CPU give identical results: torch's CPU kernels already
    are, at a fixed thread count (tests/test_train.py, tests/test_resume.py check it).
    ``torch.use_deterministic_algorithms`` is not set: on the CPU it changed no result and
    slowed compiled training steps severalfold (measured in benchmarks/results/)."""
    torch.manual_seed(seed)


def parameter_groups(
    model: nn.Module, weight_decay: float, scope: str = "dense"
) -> list[dict[str, Any]]:
    """Weight decay by parameter kind (:data:`DECAY_SCOPES`). ``dense``: conv and linear
    weights only, none on BN parameters, biases, and depthwise filters, which have so few
    parameters that decay only hurts (MobileNet §3.2)."""
    if scope not in DECAY_SCOPES:
        raise ValueError(f"weight-decay scope {scope!r}; allowed: {', '.join(DECAY_SCOPES)}")
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            depthwise = is_depthwise(module)
            is_weight = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            decayed = scope == "all" or (is_weight and (scope == "weights" or not depthwise))
            (decay if decayed else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: TrainParams) -> torch.optim.SGD:
    """SGD with (Nesterov) momentum over :func:`parameter_groups`, at the peak rate."""
    return torch.optim.SGD(
        parameter_groups(model, config.weight_decay, config.weight_decay_scope),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int, shape: str = "cosine") -> float:
    """Linear warm-up to the peak rate, then cosine or linear decay to zero at the last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if shape == "linear":
        return 1.0 - progress
    return 0.5 * (1 + math.cos(math.pi * progress))


def make_schedule(
    optimizer: torch.optim.Optimizer, config: TrainParams, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`lr_factor` over the whole run, stepped once per batch."""
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, config.schedule)
    )
