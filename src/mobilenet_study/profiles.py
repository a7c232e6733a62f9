"""`make quick` and `make repro`: the whole pipeline, on the CPU quick profile or the full study.

The quick profile is a set of `dvc exp run -S key=value` overrides on top of params.yaml, so the
committed defaults stay those of the full study and the quick run is an ordinary DVC experiment
(`dvc exp show` lists it). ``DATA=<path>`` sets ``data.source`` for offline machines.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

# Overrides of params.yaml for a run of the whole pipeline in minutes on a 2-core CPU: MobileNet
# V1 and the baseline CNN at the same 2x2 (α, ρ) points, so that every quick run has the α and ρ
# steps, the point-by-point comparison and both Pareto frontiers; V2 beside V1 at its smallest
# point; 2,000 training images (200 per class), 4 epochs, and fewer latency repeats. The
# baseline at α 0.5 is half of the training time (it has 8x V1's MACs), which is why ρ stops
# at 0.75 here.
QUICK_OVERRIDES: dict[str, Any] = {
    "grid.sweep.widths": [0.25, 0.5],
    "grid.sweep.resolutions": [0.5, 0.75],
    "grid.reference.widths": [0.25],
    "grid.reference.resolutions": [0.5],
    "train.device": "cpu",
    "train.epochs": 4,
    "train.batch_size": 64,  # more, smaller steps: MobileNet learns slowly from few steps
    "train.lr": 0.1,
    "train.warmup_epochs": 1,
    "train.train_subset": 2000,
    "train.test_subset": 1000,
    # Grad-CAM of the baseline and V1 side by side at the largest (α, ρ), and V1 at the smallest.
    "gradcam.runs": ["baseline-0.5-0.75-0", "mobilenet_v1-0.5-0.75-0", "mobilenet_v1-0.25-0.5-0"],
    "cost.warmup": 2,
    "cost.repeats": 10,
}


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """`-S key=value` pairs, values written as YAML/JSON literals (lists stay lists)."""
    args: list[str] = []
    for key, value in overrides.items():
        literal = value if isinstance(value, str) else json.dumps(value)
        args += ["-S", f"{key}={literal}"]
    return args


def pipeline_command(profile: str, data: str | None) -> list[str]:
    """The DVC command that runs ``profile`` ("quick" or "full"), with an optional data source."""
    overrides = dict(QUICK_OVERRIDES) if profile == "quick" else {}
    if data:
        overrides["data.source"] = data
    if not overrides:
        return ["dvc", "repro"]
    return ["dvc", "exp", "run", *override_args(overrides)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", choices=("quick", "full"))
    parser.add_argument("--data", help="CIFAR-10 source: URL, archive, or image-folder mirror")
    args = parser.parse_args(argv)
    command = pipeline_command(args.profile, args.data)
    print("+", shlex.join(command), flush=True)
    status = subprocess.run(command).returncode
    if status == 0:
        print(
            "\nResults: metrics/ (dvc metrics show), plots/ (dvc plots show), reports/.\n"
            "The run's params are in params.yaml: `dvc params diff` compares them with HEAD."
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
