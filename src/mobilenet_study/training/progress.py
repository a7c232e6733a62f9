"""Where a training run stands, in a small JSON file beside its checkpoint (the training
stage's ``checkpoints/<run>/progress.json``), rewritten every few seconds: epochs done, steps
into the next, seconds spent. ``python -m mobilenet_study.status`` reads these files."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mobilenet_study.files import atomic_path

INTERVAL_S = 10.0


@dataclass(frozen=True)
class RunProgress:
    """One run's progress as its file states it."""

    epochs_done: int
    step: int  # steps done in the epoch after them
    steps_per_epoch: int
    epochs: int
    elapsed_s: float  # wall seconds, evaluation included
    step_seconds: float  # of which in training steps
    updated: str  # UTC, ISO 8601

    @property
    def fraction(self) -> float:
        total = self.epochs * self.steps_per_epoch
        return min(1.0, (self.epochs_done * self.steps_per_epoch + self.step) / max(1, total))

    @property
    def seconds_left(self) -> float | None:
        """The rest at the pace so far; None before any work."""
        if self.fraction <= 0:
            return None
        return self.elapsed_s * (1 - self.fraction) / self.fraction


def read_progress(path: str | Path) -> RunProgress | None:
    """The progress in ``path``, or None if there is none (or it cannot be read)."""
    try:
        raw: dict[str, Any] = json.loads(Path(path).read_text())
        return RunProgress(**raw)
    except (OSError, ValueError, TypeError):
        return None


class ProgressFile:
    """Rewrites one run's progress file at most every :data:`INTERVAL_S` (none without a
    path)."""

    def __init__(self, path: Path | None, epochs: int, steps_per_epoch: int) -> None:
        self.path, self.epochs, self.steps_per_epoch = path, epochs, steps_per_epoch
        self.last = float("-inf")

    def due(self) -> bool:
        return self.path is not None and time.monotonic() - self.last >= INTERVAL_S

    def update(self, epochs_done: int, step: int, elapsed_s: float, step_seconds: float) -> None:
        if self.path is None:
            return
        progress = RunProgress(
            epochs_done,
            step,
            self.steps_per_epoch,
            self.epochs,
            round(elapsed_s, 1),
            round(step_seconds, 1),
            datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        )
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(asdict(progress)) + "\n")
        self.last = time.monotonic()
