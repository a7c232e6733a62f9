"""What every stage entry point shares: user errors become a message and exit code 2."""

from __future__ import annotations

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
