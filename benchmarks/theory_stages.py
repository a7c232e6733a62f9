"""Wall time of the theory stages (issue 21's budget: all four together within 20 minutes on a
2-core CPU at the default params, within 1 minute at the quick profile's).

Runs each stage's command in turn in a workspace whose `download` stage has run (and whose
`theory.gradcam.run` is trained), as `dvc repro` would, and prints the seconds of each and the
total against the budget. Use a workspace whose params are the ones to time:

    python benchmarks/theory_stages.py --repo .            # the params in ./params.yaml
    python benchmarks/theory_stages.py --repo . --budget 60
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("theory_init", "theory_degradation", "theory_gradcam", "theory_report")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--budget", type=float, default=20 * 60, help="seconds for all four")
    args = parser.parse_args()
    total = 0.0
    for stage in STAGES:
        start = time.perf_counter()
        subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=args.repo, check=True)
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{stage:20s} {seconds:8.1f} s", flush=True)
    verdict = "within" if total <= args.budget else "OVER"
    print(f"{'all four':20s} {total:8.1f} s ({verdict} the budget of {args.budget:.0f} s)")


if __name__ == "__main__":
    main()
