"""One epoch of the cpu profile's grid, today's code against an older commit's, measured side
by side in one run: every run of the grid trains a few steps with each side's own recipe and
code (alternating sides, run by run), and its seconds per step times its steps per epoch give
that run's epoch; the grid's epoch is their sum. A whole grid epoch takes hours on the slowest
machines; this takes minutes.

    python benchmarks/grid_epoch.py --old 038152f --data <prepared> [--steps 8] \\
        [--new-set train.compile=true ...]

The old commit's `src/` and `params.yaml` are taken with `git archive` into a temporary
folder; each side runs in its own process (benchmarks/grid_epoch_side.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SIDE = REPO_ROOT / "benchmarks" / "grid_epoch_side.py"


def export_commit(commit: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src", "params.yaml"],
        cwd=REPO_ROOT, check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def grid_runs(tree: Path) -> list[str]:
    code = (
        "from mobilenet_study.params import load_params;"
        "from mobilenet_study.profiles import profile_overrides, with_overrides;"
        "from mobilenet_study.grid import Grid;"
        f"p = with_overrides(load_params({str(tree / 'params.yaml')!r}), "
        "profile_overrides('cpu', None));"
        "print('\\n'.join(r.name for r in Grid.from_params(p).runs))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(tree), check=True, capture_output=True, text=True
    )
    return out.stdout.split()


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree / "src")}


def time_side(tree: Path, run: str, data: Path, steps: int, sets: list[str]) -> dict:
    command = [
        sys.executable, str(SIDE), run, str(tree / "params.yaml"), str(data), str(steps), *sets
    ]  # fmt: skip
    out = subprocess.run(command, env=_env(tree), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the commit to compare with")
    parser.add_argument("--data", type=Path, required=True, help="prepared folder")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run and side")
    parser.add_argument("--new-set", action="append", default=[], help="train.KEY=VALUE")
    parser.add_argument("--runs", default="", help="comma-separated subset of the grid")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = export_commit(args.old, Path(tmp))
        runs = args.runs.split(",") if args.runs else grid_runs(old)
        rows = []
        for run in runs:
            a = time_side(old, run, args.data, args.steps, [])
            b = time_side(REPO_ROOT, run, args.data, args.steps, args.new_set)
            rows.append((run, a, b))
            epoch_a = a["seconds_per_step"] * a["steps_per_epoch"]
            epoch_b = b["seconds_per_step"] * b["steps_per_epoch"]
            print(
                f"{run:28} old {epoch_a:7.1f} s/epoch (batch {a['batch_size']}, "
                f"{a['precision']})  new {epoch_b:7.1f} s/epoch (batch {b['batch_size']}, "
                f"{b['precision']}, compile {b['compile']}, warm-up {b['warmup_seconds']:.0f} s)"
                f"  {epoch_a / epoch_b:.2f}x",
                flush=True,
            )
    total_a = sum(a["seconds_per_step"] * a["steps_per_epoch"] for _, a, _ in rows)
    total_b = sum(b["seconds_per_step"] * b["steps_per_epoch"] for _, _, b in rows)
    print(
        f"\ngrid epoch ({len(rows)} runs): old {args.old} {total_a / 60:.1f} min, "
        f"new {total_b / 60:.1f} min, ratio {total_a / total_b:.2f}x"
    )


if __name__ == "__main__":
    main()
