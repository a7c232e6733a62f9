"""What the stages share: user errors become a message and exit code 2, and the number of CPUs
a stage may use."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from mobilenet_study.params import StudyError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a :class:`StudyError` prints one paragraph and exits with status 2."""
    try:
        main()
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def usable_cpus() -> int:
    """The CPUs this process may use (not all of the machine's, under a CPU limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)
