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

# Overrides of params.yaml for a run of the whole pipeline in minutes on a 2-core CPU: a 3x2
# sweep of MobileNet V1, the baseline and V2 at a small width, 4,000 training images (400 per
# class), 4 epochs, and fewer latency repeats.
QUICK_OVERRIDES: dict[str, Any] = {
    "grid.sweep.widths": [0.25, 0.5, 1.0],
    "grid.sweep.resolutions": [0.5, 1.0],
    "grid.reference.widths": [0.25],
    "grid.reference.resolutions": [1.0],
    "train.device": "cpu",
    "train.epochs": 4,
    "train.batch_size": 64,  # more, smaller steps: MobileNet learns slowly from few steps
    "train.lr": 0.1,
    "train.warmup_epochs": 1,
    "train.train_subset": 4000,
    "train.test_subset": 1000,
    # Grad-CAM of the baseline and of V1 at the largest and the smallest (α, ρ) trained.
    "gradcam.runs": ["baseline-0.25-1.0", "mobilenet_v1-1.0-1.0", "mobilenet_v1-0.25-0.5"],
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
