"""A profile's attempts: each recorded with its wall time, even one killed outright."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mobilenet_study import attempts
from mobilenet_study.params import StudyError


def _recorded(root: Path) -> list[dict]:
    log = attempts.run_log("quick", root)
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_finished_attempt_is_one_line_and_leaves_no_live_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert attempts.timed_run("quick", [["true"]]) == 0
    assert attempts.timed_run("quick", [["false"], ["true"]]) == 1  # stops at the failure
    first, second = _recorded(tmp_path)
    assert (first["status"], second["status"]) == (0, 1)
    assert second["commands"] == ["false", "true"] and first["commit"] == "unknown"  # no git
    assert first["started"] <= first["ended"] and "pid" not in first
    assert not attempts.live_attempt("quick", tmp_path).exists()


def test_an_attempt_killed_outright_is_recorded_by_the_next(tmp_path: Path) -> None:
    # A profile whose command sleeps, its live file rewritten every 0.2 s, killed with
    # SIGKILL (no handler runs) after a second: no line of its own...
    script = (
        "from mobilenet_study import attempts; "
        "attempts.timed_run('quick', [['sleep', '30']], heartbeat_s=0.2)"
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, start_new_session=True)
    live = attempts.live_attempt("quick", tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        live.exists() and json.loads(live.read_text())["wall_s"] >= 1.0
    ):
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not attempts.run_log("quick", tmp_path).exists()
    # ...and the next attempt records it, with its wall time up to its last rewrite.
    killed = attempts.recover_killed("quick", tmp_path)
    assert killed is not None and killed["status"] == "killed"
    assert 1.0 <= killed["wall_s"] < 30 and killed["commands"] == ["sleep 30"]
    assert _recorded(tmp_path) == [killed] and not live.exists()
    assert attempts.recover_killed("quick", tmp_path) is None  # recorded once


def test_a_torn_live_file_is_dropped_not_recorded(tmp_path: Path) -> None:
    live = attempts.live_attempt("quick", tmp_path)
    live.parent.mkdir(parents=True)
    live.write_text('{"started": "2026-')
    assert attempts.recover_killed("quick", tmp_path) is None
    assert not live.exists() and not attempts.run_log("quick", tmp_path).exists()


def _live(root: Path, **fields: object) -> Path:
    live = attempts.live_attempt("quick", root)
    live.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    base = {"started": now.isoformat(), "ended": now.isoformat(), "wall_s": 5.0, "commit": "c"}
    live.write_text(json.dumps({**base, **fields}))
    return live


def test_an_attempt_still_running_is_not_taken_for_killed(tmp_path: Path) -> None:
    # This very process, on this machine: running. `make results` or a second `make quick`
    # stop with one line rather than record half an attempt.
    live = _live(tmp_path, pid=os.getpid(), host=socket.gethostname())
    with pytest.raises(StudyError, match=f"running \\(process {os.getpid()}"):
        attempts.recover_killed("quick", tmp_path)
    assert live.exists() and not attempts.run_log("quick", tmp_path).exists()
    # Another machine sharing the folder: running while it rewrites the file, killed after.
    _live(tmp_path, pid=1, host="elsewhere")
    with pytest.raises(StudyError):
        attempts.recover_killed("quick", tmp_path)
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    _live(tmp_path, pid=1, host="elsewhere", ended=long_ago.isoformat())
    killed = attempts.recover_killed("quick", tmp_path)
    assert killed is not None and killed["status"] == "killed" and "host" not in killed
