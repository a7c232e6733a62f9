"""The quick profile as one sequential DVC experiment, against the same grid in N queued shards
(`dvc queue start -j N`) assembled through the run-cache: wall time of each, their ratio, and
the memory each queue worker's training process holds.

    .venv/bin/python benchmarks/queue_shards.py [--data MIRROR] [--jobs 2] [--profile quick]

Each side runs in its own fresh clone of this repository's HEAD (own DVC cache, so neither
reuses the other's run-cache), with this environment's Python and DVC on PATH. Commit first:
the clones run the committed pipeline. Memory: the resident set of every process working in
the clone (queue workers run in .dvc/tmp/exps inside it), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
GIB = 1024**3


@dataclass
class MemorySampler:
    """Peak resident memory of the processes whose working directory is under ``root``."""

    root: Path
    interval_s: float = 0.2
    train_peaks: dict[int, int] = field(default_factory=dict)  # per training process
    peak_total: int = 0
    peak_trainers: int = 0  # training processes alive at once, at most
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        total, trainers = 0, 0
        for proc in psutil.process_iter(["pid", "cmdline", "cwd", "memory_info"]):
            info = proc.info
            if not info["cwd"] or not info["memory_info"]:
                continue
            if not info["cwd"].startswith(str(self.root)):
                continue
            rss = info["memory_info"].rss
            total += rss
            if any("stages/train.py" in part for part in info["cmdline"] or ()):
                trainers += 1
                self.train_peaks[info["pid"]] = max(self.train_peaks.get(info["pid"], 0), rss)
        self.peak_total = max(self.peak_total, total)
        self.peak_trainers = max(self.peak_trainers, trainers)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def clone(target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True)
    return target


def timed(command: list[str], cwd: Path, log: Path) -> tuple[float, dict[str, float]]:
    """Run ``command``; its wall time, and when (seconds from the start) each command it
    echoes (``+ dvc ...``) began."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # The clone's own library, not the editable install's (this working tree).
        "PYTHONPATH": str(cwd / "src"),
    }
    marks: dict[str, float] = {}
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.startswith(("+ ", "waiting for")):
                marks.setdefault(line.strip(), time.perf_counter() - start)
        proc.wait()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}; see {log}")
    return elapsed, marks


def stages_run(log: Path) -> list[str]:
    return [
        line.split("'")[1] for line in log.read_text().splitlines() if line.startswith("Running")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--profile", default="quick", choices=("quick", "full"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch clones")
    args = parser.parse_args()
    data = str(args.data.resolve())
    module = [sys.executable, "-m", "mobilenet_study.commands"]

    work = Path(tempfile.mkdtemp(prefix="queue-shards-"))
    print(f"scratch: {work}; {os.cpu_count()} CPUs; profile {args.profile}; data {data}")

    sequential = clone(work / "sequential")
    with MemorySampler(sequential) as seq_memory:
        seq_s, _ = timed(
            [*module, args.profile, "--data", data], sequential, work / "sequential.log"
        )
    trained = [s for s in stages_run(work / "sequential.log") if s.startswith("train")]
    print(f"sequential: {seq_s:7.1f} s, {len(trained)} runs trained one after another")

    queued = clone(work / "queued")
    command = [*module, "shards", str(args.jobs), "--profile", args.profile, "--data", data]
    with MemorySampler(queued) as queue_memory:
        queue_s, marks = timed(command, queued, work / "queued.log")
    after = stages_run(work / "queued.log")
    retrained = [s for s in after if s.startswith("train")]
    # The pipeline that assembles is the first command echoed after the wait for the shards.
    waited = next((t for line, t in marks.items() if line.startswith("waiting")), queue_s)
    shards_s = min((t for line, t in marks.items() if line[0] == "+" and t >= waited), default=0)
    print(
        f"{args.jobs} queued shards + assembly: {queue_s:7.1f} s: shards (queueing included) "
        f"{shards_s:.1f} s, assembly {queue_s - shards_s:.1f} s; the assembling run retrained "
        f"{len(retrained)} runs{': ' + ', '.join(retrained) if retrained else ''}"
    )
    print(f"ratio sequential / queued: {seq_s / queue_s:.2f}x")
    for name, memory in (("sequential", seq_memory), ("queued", queue_memory)):
        peaks = sorted(memory.train_peaks.values())
        print(
            f"memory, {name}: each training process peaked at "
            f"{peaks[0] / GIB:.2f}-{peaks[-1] / GIB:.2f} GiB resident; at most "
            f"{memory.peak_trainers} at once; everything in the clone together (DVC, queue "
            f"workers, stages) peaked at {memory.peak_total / GIB:.2f} GiB"
        )
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
