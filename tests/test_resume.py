"""A training run killed with SIGKILL — right after a mid-epoch checkpoint, and at a random
moment — resumes with the same command and ends with the final metrics and weights of an
uninterrupted run."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

from .conftest import REPO_ROOT


def _worker(checkpoint: Path, result: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.resume_worker", str(checkpoint), str(result), *extra]
    return subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE)


def test_killed_run_resumes_to_identical_metrics(tmp_path: Path) -> None:
    reference = tmp_path / "reference.json"
    assert _worker(tmp_path / "ref.pt", reference).wait(timeout=300) == 0

    checkpoint, result = tmp_path / "last.pt", tmp_path / "resumed.json"
    # 1. Killed right after the checkpoint at epoch 2, step 10 (of 37 an epoch).
    first = _worker(checkpoint, result, "--die-after", "1:10")
    assert first.wait(timeout=300) == -9 and checkpoint.exists()
    # 2. Resumed, then killed at a random moment once it is training again.
    second = _worker(checkpoint, result)
    deadline = time.monotonic() + 120
    start = checkpoint.stat().st_mtime
    while checkpoint.stat().st_mtime == start and second.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(random.Random().uniform(0.0, 0.3))
    second.kill()
    second.wait(timeout=60)
    _, stderr = second.communicate()
    assert b"resuming from" in stderr and b"at epoch 2, step 10" in stderr
    # 3. The same command again, to the end.
    third = _worker(checkpoint, result)
    _, stderr = third.communicate(timeout=300)
    assert third.returncode == 0, stderr.decode()[-2000:]
    resumed, uninterrupted = json.loads(result.read_text()), json.loads(reference.read_text())
    assert resumed["history"] == uninterrupted["history"]
    assert resumed["weights"] == uninterrupted["weights"]
