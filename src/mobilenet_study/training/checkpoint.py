"""Epoch checkpoints: what one holds, and when it may be resumed.

A checkpoint is written after every epoch to ``checkpoints/<run>/last.pt``, outside the stage's
DVC outputs (DVC deletes those before rerunning a stage). It is resumed only if it was made for
the same recipe, run, data, code, kind of device and torch version (:func:`checkpoint_key`);
then the final metrics equal those of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobilenet_study import models
from mobilenet_study.grid import Run
from mobilenet_study.outputs import atomic_path
from mobilenet_study.params import StudyError
from mobilenet_study.training.recipe import TrainParams

TRAINING_DIR = Path(__file__).parent


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def checkpoint_key(config: TrainParams, run: Run, data_hash: str, device: torch.device) -> str:
    """What a checkpoint must have been made for to be resumed: the recipe, the run, the data,
    the code that builds and trains the model, the kind of device and the torch version."""
    sources = [
        *sorted(TRAINING_DIR.glob("*.py")),
        *sorted(Path(models.__file__).parent.glob("*.py")),
    ]
    code = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()
    return fingerprint(config, run, data_hash, code, device.type, torch.__version__)


@dataclass
class TrainingState:
    """Everything an epoch checkpoint restores, besides the model's and optimiser's tensors."""

    history: list[dict[str, Any]]  # one EpochRecord per finished epoch, as a dict
    elapsed: float  # seconds in finished epochs, evaluation included
    step_seconds: float  # seconds in their training steps only


def save_checkpoint(
    path: Path,
    key: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    state: TrainingState,
) -> None:
    payload = {
        "fingerprint": key,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "generator": generator.get_state(),
        **asdict(state),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path, expected: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists, is readable and was made for ``expected``."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a corrupt checkpoint is not worth failing the run for
        print(f"ignoring unreadable checkpoint {path}: {err}", file=sys.stderr)
        return None
    if state.get("fingerprint") != expected:
        print(f"ignoring checkpoint {path}: it was made for other params", file=sys.stderr)
        return None
    return state


def restore(
    path: Path,
    payload: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> TrainingState:
    """Load a matching checkpoint's tensors into the objects; its :class:`TrainingState`."""
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["schedule"])
        generator.set_state(payload["generator"])
        return TrainingState(list(payload["history"]), payload["elapsed"], payload["step_seconds"])
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        # The key matched, so this is damage, not other params: the model may be half loaded,
        # and starting over silently would hide it.
        reason = str(err).strip().splitlines()[0][:200]
        raise StudyError(
            f"checkpoint {path} matches this run but cannot be loaded "
            f"({type(err).__name__}: {reason}); delete it to train from the start"
        ) from err
