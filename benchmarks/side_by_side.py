"""Two small runs side by side on one core each, against one run on every core: the grid's
total training throughput either way (what `make shards N=2` buys for small models).

    python benchmarks/side_by_side.py --data <prepared> --model mobilenet_v1 --width 0.25 \\
        --resolution 0.5 [--batch-size 128] [--steps 40]

Each side trains the project's loop (`grid_epoch_side.py`, the cpu profile's recipe) in fresh
processes: first one process with all cores, then ``--jobs`` processes at once with
cores / jobs threads each; the figure is images per second summed over the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SIDE = REPO_ROOT / "benchmarks" / "grid_epoch_side.py"


def launch(run: str, data: Path, steps: int, threads: int, sets: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [
        sys.executable, str(SIDE), run, str(REPO_ROOT / "params.yaml"), str(data), str(steps),
        *sets,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def rate(processes: list[subprocess.Popen]) -> float:
    total = 0.0
    for process in processes:
        out, _ = process.communicate()
        assert process.returncode == 0, out
        row = json.loads(out.strip().splitlines()[-1])
        total += row["batch_size"] / row["seconds_per_step"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="mobilenet_v1")
    parser.add_argument("--width", default="0.25")
    parser.add_argument("--resolution", default="0.5")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="train.KEY=VALUE")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    run = f"{args.model}-{args.width}-{args.resolution}-0"
    start = time.perf_counter()
    one = rate([launch(run, args.data, args.steps, cores, args.set)])
    many = rate([launch(run, args.data, args.steps, cores // args.jobs, args.set)
                 for _ in range(args.jobs)])  # fmt: skip
    print(
        f"{run}: 1 process x {cores} threads {one:,.0f} img/s; {args.jobs} processes x "
        f"{cores // args.jobs} thread(s) {many:,.0f} img/s in all; ratio {many / one:.2f}x "
        f"({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
