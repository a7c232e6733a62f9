"""Choose the short-schedule recipe on the validation split: one change at a time against a base.

Each variant trains one model on the training images less a class-balanced validation split
(``--validation``, held out with the project's own split) for ``--epochs`` epochs and is scored
on the validation split at the last epoch — never on the test split. Every run keeps an
exponential moving average of its weights beside the raw weights (the average does not change
how the raw weights train), so that each row gives four accuracies for free: raw, raw with flip
test-time augmentation, averaged, averaged with flip TTA.

    python benchmarks/recipe_ablation.py --data <prepared> --model mobilenet_v1 --width 0.5 \\
        --epochs 5 --out benchmarks/results/ablation.jsonl [--variants base,b256,...]

Rows already in ``--out`` are skipped, so an interrupted ablation goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.machine import cpu_description
from mobilenet_study.models import build
from mobilenet_study.training.loop import evaluate, train
from mobilenet_study.training.pipeline import load_dataset
from mobilenet_study.training.recipe import TrainParams, seed_everything

# The base: params.yaml's recipe as it stood (batch 512, peak 0.4, cosine, label smoothing
# 0.1, decay on dense weights), its warm-up scaled to a short run.
BASE = TrainParams(
    device="cpu", epochs=5, batch_size=512, lr=0.4, momentum=0.9, nesterov=True,
    weight_decay=5e-4, label_smoothing=0.1, warmup_epochs=1, crop_padding=4, train_subset=0,
    test_subset=0, eval_batch_size=1000, compile=False, validation=5000, schedule="cosine",
    ema_decay=0.99, bn_momentum=0.1, flip="random", tta="none", weight_decay_scope="dense",
)  # fmt: skip

# One change each from the base (BASE, or BASE with --base's changes); the rate follows the
# batch: 0.1 per 128 images; `lr_scale` multiplies the base's rate.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "b256": {"batch_size": 256, "lr": 0.2},
    "b128": {"batch_size": 128, "lr": 0.1},
    "lr_x2": {"lr_scale": 2.0},  # the base's peak rate, doubled
    "lr_half": {"lr_scale": 0.5},
    "one_cycle": {"schedule": "linear", "warmup_epochs": 1.5},
    "linear": {"schedule": "linear"},
    "ls_0": {"label_smoothing": 0.0},
    "ls_0.2": {"label_smoothing": 0.2},
    "alt_flip": {"flip": "alternating"},
    "bn_fast": {"bn_momentum": 0.4},
    "wd_weights": {"weight_decay_scope": "weights"},
    "no_warmup": {"warmup_epochs": 0},
    "wd_all": {"weight_decay_scope": "all"},
    "wd_x2": {"weight_decay": 1e-3},
    "wd_half": {"weight_decay": 2.5e-4},
    "bf16": {"precision": "bf16"},  # a speed setting: its accuracy, paired against fp32
    "b512": {"batch_size": 512, "lr_scale": 1.0},  # the old default's batch, at the base's rate
    "b64": {"batch_size": 64, "lr_scale": 0.5},  # half the batch at the same rate per image
}


def run_variant(
    name: str, changes: dict[str, Any], args: argparse.Namespace, base: TrainParams
) -> dict[str, Any]:
    given, changes = changes, dict(changes)
    scale = changes.pop("lr_scale", 1.0)
    lr = changes.pop("lr", base.lr * scale)
    config = replace(base, **changes, lr=lr)
    run = Run(GridPoint(args.model, args.width, args.resolution), args.seed)
    device = torch.device("cpu")
    seed_everything(run.seed)
    data = load_dataset(args.data, config, run, device)
    model = build(run.model, run.width, num_classes=len(CLASSES))
    start = time.perf_counter()
    result = train(
        model, data.train, data.test, data.preprocess, config, seed=run.seed, progress=False
    )
    seconds = time.perf_counter() - start
    scores = {}
    for weights, module in (("raw", model), ("ema", result.model)):
        for tta in ("none", "flip"):
            _, accuracy, _ = evaluate(
                module, data.test, data.preprocess, config.eval_batch_size, tta
            )
            scores[f"{weights}{'_tta' if tta == 'flip' else ''}"] = round(accuracy, 4)
    return {
        "variant": name,
        "changes": given,
        "model": f"{run.model} α={run.width} ρ={run.resolution}",
        "epochs": config.epochs,
        "evaluated_on": f"{data.evaluated_on} ({len(data.test)} images)",
        **scores,
        "train_loss": round(result.history[-1].train_loss, 4),
        "seconds": round(seconds, 1),
        "images_per_second": round(result.images_trained / result.step_seconds, 1),
        "threads": torch.get_num_threads(),
        "cpu": f"{cpu_description()}, {os.cpu_count()} CPUs",
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = next((r for r in rows if r["variant"] == "base"), None)
    lines = [
        "| variant | change | raw | raw + flip TTA | EMA | EMA + flip TTA | Δ raw vs base | s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        delta = f"{100 * (r['raw'] - base['raw']):+.1f}" if base else "–"
        change = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "–"
        lines.append(
            f"| {r['variant']} | {change} | {100 * r['raw']:.1f}% | {100 * r['raw_tta']:.1f}% | "
            f"{100 * r['ema']:.1f}% | {100 * r['ema_tta']:.1f}% | {delta} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared folder")
    parser.add_argument("--model", default="mobilenet_v1")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--resolution", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=BASE.epochs)
    parser.add_argument("--validation", type=int, default=BASE.validation)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--base", default="{}", help="JSON changes to BASE for every variant")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per variant")
    parser.add_argument("--tag", default="", help="a name for this base, kept with each row")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    base = replace(BASE, epochs=args.epochs, validation=args.validation)
    base = replace(base, **json.loads(args.base))

    done = []
    if args.out.exists():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    model = f"{args.model} α={args.width} ρ={args.resolution}"

    def same_round(r: dict[str, Any]) -> bool:
        return r["model"] == model and r["epochs"] == args.epochs and r.get("tag", "") == args.tag

    finished = {r["variant"] for r in done if same_round(r)}
    for name in args.variants.split(","):
        if name in finished:
            continue
        row = {"tag": args.tag, **run_variant(name, VARIANTS[name], args, base)}
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as file:
            file.write(json.dumps(row) + "\n")
        done.append(row)
    rows = [r for r in done if same_round(r)]
    print(f"\n{model}, {args.epochs} epochs, base {json.dumps(asdict(base))}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
