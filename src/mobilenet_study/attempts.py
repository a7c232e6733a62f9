"""A profile's attempts: its commands run one after another, and each attempt (start, end, wall
time, exit status, commit) appended to ``logs/<profile>-runs.jsonl``, which `make results`
publishes. An interrupted run resumed later is two attempts of the same commit."""

from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobilenet_study.layout import RUN_LOGS
from mobilenet_study.status import Monitor


def run_commands(commands: Sequence[Sequence[str]]) -> int:
    for command in commands:
        print("+", shlex.join(command), flush=True)
        status = subprocess.run(command).returncode
        if status != 0:
            return status
    return 0


def run_log(profile: str, root: str | Path = ".") -> Path:
    """Where a profile's attempts are recorded, one JSON line each (git-ignored)."""
    return Path(root) / RUN_LOGS / f"{profile}-runs.jsonl"


def head_commit() -> str:
    """The commit checked out here (the code a run ran), or "unknown" outside git."""
    found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def timed_run(
    profile: str, commands: Sequence[Sequence[str]], params: Mapping[str, Any] | None = None
) -> int:
    """Run ``commands`` and append the attempt (start, end, wall time, status, commit) to
    :func:`run_log`: an interrupted run resumed later is two attempts of the same commit.
    With ``params`` (the profile's), a line per finished training run and a progress line with
    an ETA are printed while the commands run (mobilenet_study.status)."""
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    monitor = Monitor(params) if params is not None else None
    if monitor is not None:
        monitor.start()
    try:
        status = run_commands(commands)
    finally:
        if monitor is not None:
            monitor.stop()
    attempt = {
        "started": started.isoformat(timespec="seconds"),
        "ended": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - clock, 1),
        "status": status,
        "commit": head_commit(),
        "commands": [shlex.join(command) for command in commands],
    }
    log = run_log(profile)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as file:
        file.write(json.dumps(attempt) + "\n")
    return status
