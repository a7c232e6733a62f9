"""Whether the full profile can run here: CUDA usable, or why not, and what the full grid would
cost on this CPU instead (`make repro` checks before any work; single stages keep
`train.device: auto`, which falls back to the CPU with a warning)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobilenet_study.grid import BASE_RESOLUTION, Grid, GridPoint, Run
from mobilenet_study.models import build
from mobilenet_study.params import StudyError
from mobilenet_study.shards import run_work
from mobilenet_study.training.recipe import TrainParams

NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")
# The probe: a few SGD steps of MobileNet V1 at α = 1, 32 px, the recipe's batch, on the CPU.
PROBE_MODEL, PROBE_WIDTH, PROBE_SIDE, PROBE_STEPS = "mobilenet_v1", 1.0, 32, 3


def cuda_problem(driver_file: Path = NVIDIA_DRIVER) -> str | None:
    """Why CUDA is not usable here (None if it is): no device, or a driver torch cannot use."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"a torch build without CUDA (torch {torch.__version__})"
    build = f"torch {torch.__version__}, built for CUDA {torch.version.cuda}"
    if driver_file.exists():
        first = next(iter(driver_file.read_text().splitlines()), "")
        version = next((w for w in first.split() if w[:1].isdigit() and "." in w), "unknown")
        return (
            f"an NVIDIA driver ({version}) that {build} cannot use, most likely too old for "
            "that CUDA version"
        )
    return f"no CUDA device (no NVIDIA driver; {build})"


def probe_seconds_per_image(batch_size: int, steps: int = PROBE_STEPS) -> float:
    """Seconds per training image of the probe model on this CPU: one untimed step, then
    ``steps`` timed SGD steps (fp32, eager, all of torch's threads)."""
    model = build(PROBE_MODEL, PROBE_WIDTH)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch_size, 3, PROBE_SIDE, PROBE_SIDE)
    labels = torch.randint(0, 10, (batch_size,))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimiser.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / (steps * batch_size)


def cpu_hours(runs: Sequence[Run], images_per_run: int, seconds_per_image: float) -> float:
    """The grid's training time on this CPU, scaled from the probe by each run's MACs per
    image (an estimate: small models reach a smaller share of the CPU's peak than the probe)."""
    probe = Run(GridPoint(PROBE_MODEL, PROBE_WIDTH, PROBE_SIDE / BASE_RESOLUTION), 0)
    work = sum(run_work(run) for run in runs) / run_work(probe)
    return work * images_per_run * seconds_per_image / 3600


def full_profile_check(params: Mapping[str, Any], what: str = "`make repro`", **probe: Any) -> None:
    """Stop ``what`` (a command of the full profile) before any work where it would train on
    the CPU without being asked.

    ``train.device: cpu`` in the params is asking; ``auto`` or ``cuda`` without a usable CUDA
    device is a StudyError of one line: what was found, and the two ways on.
    """
    config = TrainParams.from_params(params)
    problem = None if config.device == "cpu" else cuda_problem(**probe)
    if problem is None:
        return
    runs = Grid.from_params(params).runs
    images = (config.train_subset or 50_000) * config.epochs
    hours = cpu_hours(runs, images, probe_seconds_per_image(config.batch_size))
    raise StudyError(
        f"{what} trains the full grid ({len(runs)} runs, {config.epochs} epochs) on CUDA, "
        f"but this machine has {problem}. Either run `make cpu` (the study sized for a CPU), or "
        f"force the full grid onto this CPU with `dvc exp run -S train.device=cpu` (about "
        f"{hours:,.0f} h, {hours / 24:.1f} days, here: {PROBE_STEPS} timed training steps "
        "scaled by each run's MACs)."
    )
