"""The pipeline's profiles: `quick` and `cpu` are sets of `dvc exp run -S key=value` overrides
on top of params.yaml, so the committed defaults stay those of the full study (`full`) and a
profile's run is an ordinary DVC experiment (`dvc exp show` lists it). ``DATA=<path>`` sets
``data.source`` for offline machines. How long each profile takes, per machine, is measured
in docs/performance.md; the commands that run them are :mod:`mobilenet_study.commands`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from mobilenet_study.params import StudyError

# Overrides of params.yaml for a run of the whole pipeline in minutes on a 2-core CPU: MobileNet
# V1 and the baseline CNN at the same 2x2 (α, ρ) points, so that every quick run has the α and ρ
# steps, the point-by-point comparison and both Pareto frontiers; V2 beside V1 at its smallest
# point; 2,000 training images (200 per class), 3 epochs, and fewer latency repeats. ρ stops at
# 0.75 because the baseline at α 0.5 (8x V1's MACs) dominates the training time.
QUICK_OVERRIDES: dict[str, Any] = {
    "grid.sweep.widths": [0.25, 0.5],
    "grid.sweep.resolutions": [0.5, 0.75],
    "grid.reference.widths": [0.25],
    "grid.reference.resolutions": [0.5],
    "train.device": "cpu",
    "train.epochs": 3,
    "train.batch_size": 64,  # more, smaller steps: MobileNet learns slowly from few steps
    "train.lr": 0.1,
    "train.warmup_epochs": 1,
    "train.train_subset": 2000,
    "train.test_subset": 1000,
    "train.compile": False,  # compiling a model would outlast these short runs
    # Grad-CAM of the baseline and V1 side by side at the largest (α, ρ), and V1 at the smallest.
    "gradcam.runs": ["baseline-0.5-0.75-0", "mobilenet_v1-0.5-0.75-0", "mobilenet_v1-0.25-0.5-0"],
    "cost.warmup": 2,
    "cost.repeats": 10,
    "deploy.warmup": 2,
    "deploy.repeats": 10,
    # The theory stages in seconds: a 12-layer plain net, ResNet-8/14 of 8/16/32 filters.
    "theory.images": 64,
    "theory.draws": 2,
    "theory.plain.depth": 12,
    "theory.plain.widths": [8, 16, 16],
    "theory.symmetry.steps": 20,
    "theory.symmetry.batch_size": 32,
    "theory.symmetry.log_every": 10,
    "theory.init_training.steps": 40,
    "theory.init_training.batch_size": 32,
    "theory.init_training.log_every": 5,
    "theory.degradation.depths": [8, 14],
    "theory.degradation.widths": [8, 16, 32],
    "theory.degradation.steps": 40,
    "theory.degradation.batch_size": 32,
    "theory.degradation.log_every": 5,
    "theory.gradcam.run": "mobilenet_v1-0.5-0.75-0",
    "theory.gradcam.images_per_class": 2,
}


# Overrides for the study answered on an ordinary 2-core CPU (results/cpu/), around the
# assignment's questions: MobileNet V1 at α {0.25, 0.5, 1} x ρ {0.5, 0.75, 1} (the α and ρ
# sweeps and, between them, the paper's §4.2: at a given MAC budget, shrink width or
# resolution?); the baseline at the same three α at ρ = 1 only (the paper's Table 4 pair at
# α = 1, and at α 0.25 about the MACs of V1 at α 1, ρ 0.75): its ρ < 1 points would cost as
# much as all of V1's; V2 at α 0.5, ρ 0.5 (about V1's MACs at α 0.5, ρ 0.75, and cheap: at
# α 1, ρ 0.5 an epoch took longer than V1's at α = ρ = 1). params.yaml's recipe at 10 epochs,
# its warm-up the same 30% share: V1 at α = ρ = 1 then ends 2.4 points below its 20-epoch
# accuracy (83.84% against 86.19%, benchmarks/results/convergence-2026-12-0{3,6}-xeon.jsonl),
# and the 13 runs fit about 4 hours on an AVX-512 2-core machine (the measured run's time:
# results/cpu/run.json).
CPU_OVERRIDES: dict[str, Any] = {
    "grid.sweep.models": ["mobilenet_v1"],
    "grid.sweep.widths": [0.25, 0.5, 1.0],
    "grid.sweep.resolutions": [0.5, 0.75, 1.0],
    "grid.twin.models": ["baseline"],
    "grid.twin.widths": [0.25, 0.5, 1.0],
    "grid.twin.resolutions": [1.0],
    "grid.reference.widths": [0.5],
    "grid.reference.resolutions": [0.5],
    "train.device": "cpu",
    "train.epochs": 10,
    "train.warmup_epochs": 3,  # params.yaml's 12 of 40
    "train.train_subset": 0,
    "train.test_subset": 0,
}

PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "quick": QUICK_OVERRIDES,
    "cpu": CPU_OVERRIDES,
    "full": {},  # params.yaml as committed
}
PROFILES = tuple(PROFILE_OVERRIDES)


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """`-S key=value` pairs, values written as YAML/JSON literals (lists stay lists)."""
    args: list[str] = []
    for key, value in overrides.items():
        literal = value if isinstance(value, str) else json.dumps(value)
        args += ["-S", f"{key}={literal}"]
    return args


def profile_overrides(profile: str, data: str | None) -> dict[str, Any]:
    """The `-S` overrides of ``profile`` (one of :data:`PROFILES`), with an optional data
    source."""
    if profile not in PROFILES:
        raise StudyError(f"profile is {profile!r}; allowed: {', '.join(PROFILES)}")
    overrides = dict(PROFILE_OVERRIDES[profile])
    if data:
        overrides["data.source"] = data
    return overrides


def pipeline_command(profile: str, data: str | None) -> list[str]:
    """The DVC command that runs ``profile``, with an optional data source."""
    overrides = profile_overrides(profile, data)
    if not overrides:
        return ["dvc", "repro"]
    return ["dvc", "exp", "run", *override_args(overrides)]


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with dotted-key ``overrides`` set, as `dvc exp run -S` would write them."""
    out = copy.deepcopy(dict(params))
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out
