"""A profile's attempts: its commands run one after another, and each attempt (start, end, wall
time, exit status, commit) appended to ``logs/<profile>-runs.jsonl``, which `make results`
publishes. An interrupted run resumed later is two attempts of the same commit; an attempt
killed outright (no chance to write its line) is recorded by the next one."""

from __future__ import annotations

import datetime
import json
import os
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobilenet_study.files import write_text
from mobilenet_study.layout import RUN_LOGS
from mobilenet_study.params import StudyError
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


def live_attempt(profile: str, root: str | Path = ".") -> Path:
    """The attempt in progress, rewritten every minute: what is left of an attempt killed
    without warning (kill -9, a machine taken back), recorded by the next attempt."""
    return Path(root) / RUN_LOGS / f"{profile}-attempt.json"


def head_commit() -> str:
    """The commit checked out here (the code a run ran), or "unknown" outside git."""
    found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _append(log: Path, attempt: Mapping[str, Any]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as file:
        file.write(json.dumps(attempt) + "\n")


def _alive(live: Mapping[str, Any]) -> bool:
    """Whether the attempt that wrote ``live`` still runs: its process, on this machine; on
    another machine sharing the folder, a rewrite within the last five minutes."""
    if live.get("host") == socket.gethostname():
        try:
            os.kill(int(live["pid"]), 0)
        except (ProcessLookupError, KeyError, ValueError, TypeError):
            return False
        except PermissionError:  # someone else's process
            return True
        return True
    try:
        beat = datetime.datetime.fromisoformat(str(live["ended"]))
    except (KeyError, ValueError):
        return False
    return datetime.datetime.now(datetime.timezone.utc) - beat < datetime.timedelta(minutes=5)


def recover_killed(profile: str, root: str | Path = ".") -> dict[str, Any] | None:
    """An attempt that left its live file behind and no longer runs was killed: record it
    (status "killed", its wall time up to its last rewrite) and return it; None when there was
    none. An attempt still running is a :class:`StudyError`: one attempt at a time."""
    path = live_attempt(profile, root)
    if not path.exists():
        return None
    try:
        live = json.loads(path.read_text())
    except json.JSONDecodeError:
        live = None  # killed while rewriting it: nothing trustworthy to record
    if isinstance(live, dict) and _alive(live):
        raise StudyError(
            f"the {profile} profile is running (process {live.get('pid')} on "
            f"{live.get('host')}, {path}): wait for it, or stop it first"
        )
    attempt = None
    if isinstance(live, dict):
        attempt = {k: v for k, v in live.items() if k not in ("pid", "host")}
        attempt["status"] = "killed"
        _append(run_log(profile, root), attempt)
    path.unlink()
    return attempt


class _Heartbeat(threading.Thread):
    """Rewrites the attempt in progress every ``every_s`` seconds (atomically)."""

    def __init__(self, path: Path, attempt: dict[str, Any], clock: float, every_s: float) -> None:
        super().__init__(daemon=True)
        self.path, self.attempt, self.clock, self.every_s = path, attempt, clock, every_s
        self.stopped = threading.Event()

    def beat(self) -> None:
        wall_s = round(time.perf_counter() - self.clock, 1)
        live = {**self.attempt, "ended": _now(), "wall_s": wall_s}
        write_text(
            self.path, json.dumps({**live, "pid": os.getpid(), "host": socket.gethostname()})
        )

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.beat()


def timed_run(
    profile: str,
    commands: Sequence[Sequence[str]],
    params: Mapping[str, Any] | None = None,
    heartbeat_s: float = 60.0,
) -> int:
    """Run ``commands`` and append the attempt (start, end, wall time, status, commit) to
    :func:`run_log`: an interrupted run resumed later is two attempts of the same commit. An
    attempt killed outright is recorded by the next one, from :func:`live_attempt`.
    With ``params`` (the profile's), a line per finished training run and a progress line with
    an ETA are printed while the commands run (mobilenet_study.status)."""
    recover_killed(profile)
    attempt: dict[str, Any] = {
        "started": _now(),
        "ended": None,
        "wall_s": 0.0,
        "status": None,
        "commit": head_commit(),
        "commands": [shlex.join(command) for command in commands],
    }
    clock = time.perf_counter()
    heartbeat = _Heartbeat(live_attempt(profile), attempt, clock, heartbeat_s)
    heartbeat.beat()
    heartbeat.start()
    monitor = Monitor(params) if params is not None else None
    if monitor is not None:
        monitor.start()
    status: int | str = "interrupted"  # Ctrl-C; else what the commands return, or their error
    try:
        status = run_commands(commands)
    except Exception as err:
        status = f"error: {type(err).__name__}"
        raise
    finally:
        if monitor is not None:
            monitor.stop()
        heartbeat.stopped.set()
        heartbeat.join()
        wall_s = round(time.perf_counter() - clock, 1)
        _append(run_log(profile), {**attempt, "ended": _now(), "wall_s": wall_s, "status": status})
        live_attempt(profile).unlink(missing_ok=True)
    return status
