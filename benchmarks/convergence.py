"""The convergence curve a profile's epoch count is read from: points of the grid trained with
params.yaml's recipe for E and 2E epochs (the schedule fitted to each length), on all 50,000
training images, tested on all 10,000 test images at the last epoch.

    python benchmarks/convergence.py --data <prepared> --epochs 10 \\
        --out benchmarks/results/convergence.jsonl [--points mobilenet_v1-1.0-1.0-0@10,...]

Default points: MobileNet V1 at α = ρ = 1 for E and 2E epochs, the baseline at α = ρ = 1 for E.
Each run checkpoints into ``--work`` (every `checkpoint.minutes`), so a stopped benchmark
resumes with the same command; finished rows in ``--out`` are not trained again. ``--set
key=value`` changes the recipe (as `dvc exp run -S train.key=value` would).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import read_stats
from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.machine import cpu_description
from mobilenet_study.models import build
from mobilenet_study.params import load_params
from mobilenet_study.training.checkpoint import checkpoint_key
from mobilenet_study.training.loop import train
from mobilenet_study.training.pipeline import load_dataset
from mobilenet_study.training.recipe import (
    TrainParams,
    recipe_fields,
    resolve_device,
    seed_everything,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_point(text: str) -> tuple[Run, int]:
    """``mobilenet_v1-1.0-1.0-0@10`` → (the run, epochs)."""
    name, _, epochs = text.partition("@")
    model, width, resolution, seed = name.rsplit("-", 3)
    return Run(GridPoint(model, float(width), float(resolution)), int(seed)), int(epochs)


def recipe(params: dict[str, Any], sets: list[str], epochs: int) -> TrainParams:
    """params.yaml's recipe at ``epochs``, its warm-up the same share of the run."""
    section = {**params["train"], "validation": 0, "train_subset": 0, "test_subset": 0}
    section["warmup_epochs"] = section["warmup_epochs"] * epochs / section["epochs"]
    for item in sets:
        key, _, value = item.partition("=")
        section[key] = yaml.safe_load(value)
    return TrainParams.from_params({**params, "train": {**section, "epochs": epochs}})


def train_point(run: Run, config: TrainParams, data_dir: Path, work: Path) -> dict[str, Any]:
    device = resolve_device(config.device)
    seed_everything(run.seed)
    data = load_dataset(data_dir, config, run, device)
    model = build(run.model, run.width, num_classes=len(CLASSES))
    folder = work / f"{run.name}@{config.epochs}"
    start = time.perf_counter()
    result = train(
        model, data.train, data.test, data.preprocess, config, seed=run.seed,
        checkpoint=folder / "last.pt",
        checkpoint_key=checkpoint_key(config, run, read_stats(data_dir).content_hash, device),
        progress_file=folder / "progress.json", progress=False,
    )  # fmt: skip
    return {
        "point": f"{run.name}@{config.epochs}",
        "epochs": config.epochs,
        "test_accuracy": result.history[-1].test_accuracy,
        "curve": [round(r.test_accuracy, 4) for r in result.history],
        "test_images": len(data.test),
        "train_images_per_epoch": result.images_trained // config.epochs,
        "train_seconds": round(result.train_seconds, 1),
        "wall_seconds_this_attempt": round(time.perf_counter() - start, 1),
        "images_per_second": round(result.images_trained / result.step_seconds, 1),
        "precision": result.precision,
        "resumed_from_epoch": result.resumed_from_epoch,
        "threads": torch.get_num_threads(),
        "recipe": recipe_fields(config),
        "cpu": cpu_description(),
        "data": "CIFAR-10 JPEG mirror (quality ~75)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared folder")
    parser.add_argument("--epochs", type=int, default=10, help="E")
    parser.add_argument("--points", default="", help="run@epochs,... (default: see above)")
    parser.add_argument("--set", action="append", default=[], help="train.KEY=VALUE")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "checkpoints" / "convergence")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    e = args.epochs
    points = args.points or (
        f"mobilenet_v1-1.0-1.0-0@{e},baseline-1.0-1.0-0@{e},mobilenet_v1-1.0-1.0-0@{2 * e}"
    )
    params = load_params(args.params)
    sets = [s.removeprefix("train.") for s in args.set]
    rows = []
    if args.out.exists():
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    for text in points.split(","):
        run, epochs = parse_point(text)
        config = recipe(params, sets, epochs)
        same = [
            r
            for r in rows
            if r["point"] == f"{run.name}@{epochs}" and r["recipe"] == recipe_fields(config)
        ]
        if same:
            continue
        row = train_point(run, config, args.data, args.work)
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as file:
            file.write(json.dumps(row) + "\n")
        rows.append(row)
    print("\n| point | epochs | test accuracy (10,000 images) | train s | img/s | precision |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['point'].split('@')[0]} | {r['epochs']} | {100 * r['test_accuracy']:.2f}% | "
            f"{r['train_seconds']:.0f} | {r['images_per_second']:.0f} | {r['precision']} |"
        )


if __name__ == "__main__":
    main()
