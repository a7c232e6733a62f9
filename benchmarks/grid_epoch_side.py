"""One side of benchmarks/grid_epoch.py: time training steps of one run of the cpu profile's
grid with whichever `mobilenet_study` is first on PYTHONPATH (an old commit's or this one's).

    PYTHONPATH=<tree>/src python benchmarks/grid_epoch_side.py RUN PARAMS DATA STEPS [KEY=VALUE...]

Uses only what every version of the package has had: params, profiles, grid, models, the
training loop. Trains three one-epoch calls on the run's recipe — ``STEPS`` / 2 steps to warm
up (allocator, oneDNN kernels, torch.compile), then ``STEPS`` and 2 × ``STEPS`` — and prints
one JSON line: the seconds per step, the steps of a full epoch, and the seconds the warm-up
took. The seconds per step are the difference of the two timed calls over ``STEPS``: each
call may also pay a fixed cost in its steps (e.g. torch.compile's guards and cache look-up on
the first step of a new wrapper), which an epoch of hundreds of steps pays once and a few timed
steps must not be charged with.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch
import yaml

from mobilenet_study.data.prepared import load_split, read_stats
from mobilenet_study.grid import Grid
from mobilenet_study.models import build
from mobilenet_study.params import load_params
from mobilenet_study.profiles import profile_overrides, with_overrides
from mobilenet_study.training.loop import train
from mobilenet_study.training.pipeline import DeviceDataset, Preprocess
from mobilenet_study.training.recipe import TrainParams, resolve_device, seed_everything


def per_step(seconds_n: float, seconds_2n: float, n: int) -> float:
    """The marginal seconds of a step, from calls of n and 2n steps; where noise makes the
    difference non-positive (a few very short steps), the longer call's mean instead."""
    marginal = (seconds_2n - seconds_n) / n
    return marginal if marginal > 0 else seconds_2n / (2 * n)


def main() -> None:
    name, params_file, data_dir, steps = sys.argv[1:5]
    extra = dict(item.split("=", 1) for item in sys.argv[5:])
    overrides = {
        **profile_overrides("cpu", None),
        **{k: yaml.safe_load(v) for k, v in extra.items()},
    }
    params = with_overrides(load_params(params_file), overrides)
    config = TrainParams.from_params(params)
    run = Grid.from_params(params).find(name)
    device = resolve_device(config.device)
    # Older commits' seed_everything also took the device.
    arity = len(inspect.signature(seed_everything).parameters)
    seed_everything(*(0, device)[:arity])
    images, labels = load_split(data_dir, "train")
    stats = read_stats(data_dir)
    preprocess = Preprocess.create(stats.mean, stats.std, run.input_size, device)
    test = DeviceDataset.from_arrays(images[:100], labels[:100], device)
    model = build(run.model, run.width)
    one_epoch = replace(config, epochs=1, warmup_epochs=0)
    seconds, step_seconds = [], []
    for n_steps in (max(2, int(steps) // 2), int(steps), 2 * int(steps)):
        subset = np.arange(n_steps * config.batch_size) % len(labels)
        data = DeviceDataset.from_arrays(images[subset], labels[subset], device)
        start = time.perf_counter()
        result = train(model, data, test, preprocess, one_epoch, progress=False)
        seconds.append(time.perf_counter() - start)
        step_seconds.append(result.step_seconds)
    print(
        json.dumps(
            {
                "run": name,
                "batch_size": config.batch_size,
                "steps_per_epoch": (50_000 - getattr(config, "validation", 0)) // config.batch_size,
                "seconds_per_step": per_step(step_seconds[1], step_seconds[2], int(steps)),
                "warmup_seconds": round(seconds[0], 2),
                "precision": getattr(result, "precision", "fp32"),
                "compile": config.compile,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
