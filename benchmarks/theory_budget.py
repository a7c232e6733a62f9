"""At what budget does the deeper ResNet reach the lower training error? (He et al. 2016, Fig. 6)

The `theory_degradation` stage decides "ResNet-deep ends lower than ResNet-shallow" after
`theory.degradation.steps` steps; on a 2-core CPU that budget may be too short. This trains the
two ResNets of params.yaml's `theory:` section (depths, widths, input size, batch, rate, seed,
log interval: all as the stage has them) for ``--steps`` steps instead. The rate is constant and
the batches come from the seed, so a run of S steps is exactly the first S steps of this one:
for every logged S it gives the stage's verdict had it run S steps, and writes them with the
first budget at which the deeper network is ahead and the one from which it stays ahead.
docs/theory.typ quotes the result where its settings are the run's.

    python benchmarks/theory_budget.py --data <prepared> --steps 16000 \\
        --out benchmarks/results/theory_budget.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from mobilenet_study.data.prepared import load_split, read_stats
from mobilenet_study.machine import cpu_description
from mobilenet_study.params import load_params
from mobilenet_study.theory import experiments
from mobilenet_study.theory.config import TheoryParams
from mobilenet_study.theory.training import TrainingImages

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared folder")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    config = TheoryParams.from_params(load_params(args.params))
    schedule = dataclasses.replace(config.degradation.schedule, steps=args.steps)
    images, labels = load_split(args.data, "train")
    stats = read_stats(args.data)
    data = TrainingImages.from_arrays(images, labels, stats.mean, stats.std, config.input_size)
    shallow, deep = config.degradation.depths[0], config.degradation.depths[-1]
    logs, seconds = {}, {}
    for depth in (shallow, deep):
        start = time.perf_counter()
        logs[depth] = experiments.train_network(config, data, depth, True, schedule)
        seconds[depth] = round(time.perf_counter() - start, 1)
        print(f"resnet-{depth}: {args.steps} steps in {seconds[depth]:.0f} s", flush=True)
    verdicts = experiments.verdict_by_budget(logs[shallow], logs[deep])
    result = {
        "question": f"resnet-{deep} below resnet-{shallow} in final training error",
        "settings": experiments.degradation_settings(config),
        "stage_steps": config.degradation.schedule.steps,
        **experiments.budget_summary(verdicts),
        "seconds": {f"resnet-{d}": s for d, s in seconds.items()},
        "threads": torch.get_num_threads(),
        "cpu": cpu_description(),
        "verdicts": verdicts.to_dict(orient="list"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    every = max(1, len(verdicts) // 16)
    print(verdicts.iloc[::every].to_string(index=False))
    print({k: v for k, v in result.items() if k != "verdicts"})


if __name__ == "__main__":
    main()
