"""Wall time of the theory stages and the papers' orderings they measured (the budget: all four
together within 20 minutes on the slowest 2-core CPU, 8 on a Zen 5, at the default params;
within 1 minute at the quick profile's).

Runs each stage's command in turn in a workspace whose `download` stage has run (and whose
`theory.gradcam.run` is trained), as `dvc repro` would, and prints the seconds of each and the
total against the budget. Use a workspace whose params are the ones to time:

    python benchmarks/theory_stages.py --repo .            # the params in ./params.yaml
    python benchmarks/theory_stages.py --repo . --budget 60
"""

from __future__ import annotations

import argparse
import json
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
    print_verdicts(args.repo)


# The papers' orderings, as the stages' metrics state them: (file, key, what the paper has).
ORDERINGS = (
    ("init", "xavier_stalled", True, "He et al. 2015 Fig. 3: Xavier stalls"),
    ("init", "he_stalled", False, "He et al. 2015 Fig. 3: He trains"),
    ("degradation", "plain_deeper_worse", True, "He et al. 2016 Fig. 6: plain deep worse"),
    ("degradation", "resnet_deeper_better", True, "He et al. 2016 Fig. 6: ResNet deep better"),
    ("degradation", "resnet_beats_plain_deep", True, "He et al. 2016 Fig. 6: ResNet beats plain"),
)


def print_verdicts(repo: Path) -> None:
    """Each ordering as measured, against the paper's, from metrics/theory/*.json."""
    metrics = {
        name: json.loads((repo / "metrics" / "theory" / f"{name}.json").read_text())
        for name in ("init", "degradation")
    }
    for name, key, paper, what in ORDERINGS:
        measured = metrics[name][key]
        agrees = "as the paper" if measured == paper else "NOT as the paper"
        print(f"{what:45s} {key} = {str(measured).lower():5s} ({agrees})")
    for name, values in metrics.items():
        print(f"metrics/theory/{name}.json: {json.dumps(values)}")


if __name__ == "__main__":
    main()
