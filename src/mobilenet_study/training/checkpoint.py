"""Checkpoints by wall time: what one holds, how it is written and checked, and when it may be
resumed.

A checkpoint is written to ``checkpoints/<run>/last.pt`` every ``checkpoint.minutes`` of
wall time, mid-epoch too, outside the stage's DVC outputs (DVC deletes those before rerunning a
stage). The file is a SHA-256 digest followed by the ``torch.save`` bytes it covers, written to
a temporary name and renamed: a process killed while writing leaves the previous checkpoint,
and a file damaged later fails its digest. A checkpoint is resumed only if it was made for the
same recipe, run, data, code, kind of device and torch version (:func:`checkpoint_key`); then
the final metrics equal those of an uninterrupted run. Anything else — unreadable, damaged,
made for other params — is set aside with a one-line warning and the run starts afresh.
"""

from __future__ import annotations

import copy
import hashlib
import io
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobilenet_study import models
from mobilenet_study.files import atomic_path
from mobilenet_study.grid import Run
from mobilenet_study.machine import has_native_bf16
from mobilenet_study.training.recipe import TrainParams, fingerprint, recipe_fields

TRAINING_DIR = Path(__file__).parent
MAGIC = b"mobilenet-study checkpoint v2\n"
DIGEST_BYTES = hashlib.sha256().digest_size


def checkpoint_key(config: TrainParams, run: Run, data_hash: str, device: torch.device) -> str:
    """What a checkpoint must have been made for to be resumed: the recipe, the run, the data,
    the code that builds and trains the model, the kind of device (and whether its CPU has
    bf16 units, which `train.precision: auto` follows) and the torch version."""
    sources = [
        *sorted(TRAINING_DIR.glob("*.py")),
        *sorted(Path(models.__file__).parent.glob("*.py")),
    ]
    code = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()
    return fingerprint(
        recipe_fields(config), run, data_hash, code, device.type, has_native_bf16(),
        torch.__version__,
    )  # fmt: skip


@dataclass
class EpochCursor:
    """Where a run stands inside an epoch: enough to continue it step for step."""

    epoch: int  # 0-based epoch in progress
    step: int  # its training steps done
    order: torch.Tensor  # the epoch's permutation of the training images
    loss_sum: torch.Tensor  # running sums over the steps done, on the device
    correct: torch.Tensor
    lr: float  # the rate of the last step done
    seconds: float  # wall seconds spent in this epoch so far
    step_seconds: float  # of which in training steps


@dataclass
class TrainingState:
    """Everything a checkpoint restores, besides the model's and optimiser's tensors."""

    history: list[dict[str, Any]]  # one EpochRecord per finished epoch, as a dict
    elapsed: float  # seconds in finished epochs, evaluation included
    step_seconds: float  # seconds in their training steps only
    cursor: EpochCursor | None = None  # the epoch in progress, if saved mid-epoch


@dataclass
class Resumable:
    """The objects a checkpoint captures and restores, as one run holds them."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    ema: nn.Module | None = None  # torch.optim.swa_utils.AveragedModel, when train.ema_decay > 0

    def state_dicts(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        self.generator.set_state(payload["generator"])
        if (self.ema is None) != (payload["ema"] is None):
            raise ValueError("the checkpoint's weight average does not match train.ema_decay")
        if self.ema is not None:
            self.ema.load_state_dict(payload["ema"])


def save_checkpoint(path: Path, key: str, objects: Resumable, state: TrainingState) -> None:
    """Write the checkpoint atomically: digest, then the serialised payload."""
    cursor = asdict(state.cursor) if state.cursor is not None else None
    payload = {
        "fingerprint": key,
        **objects.state_dicts(),
        "history": state.history,
        "elapsed": state.elapsed,
        "step_seconds": state.step_seconds,
        "cursor": cursor,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    blob = buffer.getbuffer()
    with atomic_path(path) as tmp, tmp.open("wb") as file:
        file.write(MAGIC)
        file.write(hashlib.sha256(blob).digest())
        file.write(blob)


def _warn(path: Path, reason: str) -> None:
    print(
        f"warning: ignoring checkpoint {path} ({reason}); starting this run afresh",
        file=sys.stderr,
    )


def read_checkpoint(path: Path, expected: str) -> dict[str, Any] | None:
    """The payload at ``path`` if it exists, is intact and was made for ``expected``; else
    None (after a one-line warning, unless there is no file)."""
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
    except OSError as err:
        _warn(path, f"unreadable: {err}")
        return None
    head, body = raw[: len(MAGIC) + DIGEST_BYTES], raw[len(MAGIC) + DIGEST_BYTES :]
    if not head.startswith(MAGIC) or len(head) < len(MAGIC) + DIGEST_BYTES:
        _warn(path, "not a checkpoint of this version, or truncated")
        return None
    if hashlib.sha256(body).digest() != head[len(MAGIC) :]:
        _warn(path, "damaged: its digest does not match its contents")
        return None
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)
    except Exception as err:  # whatever the unpickler says, the file is unusable
        _warn(path, f"unreadable: {type(err).__name__}")
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != expected:
        _warn(path, "made for other params, code or data")
        return None
    return payload


def restore(path: Path, payload: dict[str, Any], objects: Resumable) -> TrainingState | None:
    """Load a matching checkpoint into ``objects``; its :class:`TrainingState`, or None (and
    ``objects`` as they were) if it cannot be loaded into them."""
    before = copy.deepcopy(objects.state_dicts())
    try:
        objects.load(payload)
        cursor = payload["cursor"]
        return TrainingState(
            list(payload["history"]),
            float(payload["elapsed"]),
            float(payload["step_seconds"]),
            EpochCursor(**cursor) if cursor is not None else None,
        )
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        objects.load(before)  # a half-loaded model must not train on
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        _warn(path, f"does not fit this run: {type(err).__name__} {reason}".strip())
        return None
