"""The prepared GPU check: what the full profile does on one GPU, in one command of at most ten
minutes, written to one report (JSON and Markdown).

    python benchmarks/gpu_check.py --data <prepared> --out <folder> [--budget-s 540]

Sections, each with the seconds it took; each stops early (and says so) if the budget runs out:

1. **Throughput per model size**: training images per second at the full recipe's batch
   (params.yaml `train.batch_size`, `train.precision: auto`, i.e. bf16 on CUDA, eager and,
   with ``--compile``, compiled), with peak GPU memory, for MobileNet V1 at α 0.25 / 0.5 / 1,
   the baseline at α 0.25 / 1 and MobileNet V2 at α 1 (32 px).
2. **bf16 against fp32**: MobileNet V1 α = 0.5 trained ``--epochs`` epochs on the prepared
   data twice, same seed, fp32 then bf16 steps (evaluation fp32 both times): both test
   accuracies and their paired McNemar test on the same test images.
3. **The full profile's wall time**: each of the grid's runs (params.yaml's grid) priced at its
   model size's measured rate (compiled ones where measured and the recipe compiles), 50,000
   images × `train.epochs`, plus the start-up measured per run in section 1: an extrapolation,
   labelled so, as [lower, upper] bounds, for the runs one after another and for ``--workers``
   trainers sharing the GPU (as `make shards N=... PROFILE=full` runs them). A rate includes
   the evaluation of the 100 test images the timed epoch ends with.

The prepared folder is what the `download` stage writes (``data/prepared``). For a machine that
cannot reach the mirror, first write a class-balanced subset (10,000 + 2,000 images, ~37 MB):

    python benchmarks/gpu_check.py --data data/prepared --out <subset> --make-subset 10000,2000

``--toy`` shrinks every size (tiny models, a few steps) so that the suite runs it end to end on
a CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from mobilenet_study.data.cifar import CLASSES, IMAGE_FOLDER, Split
from mobilenet_study.data.prepared import (
    PreparedData,
    channel_stats,
    content_sha256,
    save_prepared,
)
from mobilenet_study.data.source import Source
from mobilenet_study.grid import Grid, GridPoint, Run
from mobilenet_study.machine import cpu_description
from mobilenet_study.models import build
from mobilenet_study.params import load_params
from mobilenet_study.study.stats import paired_comparison
from mobilenet_study.training.loop import train
from mobilenet_study.training.pipeline import load_dataset, load_subset
from mobilenet_study.training.recipe import TrainParams, resolve_device, seed_everything

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZES = (
    ("mobilenet_v1", 0.25), ("mobilenet_v1", 0.5), ("mobilenet_v1", 1.0),
    ("baseline", 0.25), ("baseline", 1.0), ("mobilenet_v2", 1.0),
)  # fmt: skip
TOY_SIZES = (("mobilenet_v1", 0.25), ("baseline", 0.25))
FULL_TRAIN_IMAGES = 50_000


class Budget:
    """Seconds left of ``total``, from when it was made."""

    def __init__(self, total: float) -> None:
        self.total, self.start = total, time.perf_counter()

    def left(self) -> float:
        return self.total - (time.perf_counter() - self.start)


def recipe(params: dict[str, Any], **changes: Any) -> TrainParams:
    """params.yaml's recipe with ``changes``, the test split whole and nothing held out."""
    section = {**params["train"], "validation": 0, "warmup_epochs": 0.0, **changes}
    return TrainParams.from_params({**params, "train": section})


def throughput(
    data: Path, params: dict[str, Any], sizes: tuple, steps: int, compiled: bool, budget: Budget
) -> list[dict[str, Any]]:
    """Section 1: per model size, training img/s over ``steps`` steps after the first epoch's
    start-up (compile, cuDNN autotuning), and the start-up itself."""
    rows = []
    batch = params["train"]["batch_size"]
    for model, width in sizes:
        if budget.left() < 0:
            rows.append({"model": model, "width": width, "skipped": "budget spent"})
            continue
        config = recipe(
            params, epochs=2, train_subset=batch * steps, test_subset=100, compile=compiled,
            ema_decay=0.0, tta="none",
        )  # fmt: skip
        run = Run(GridPoint(model, width, 1.0), 0)
        device = resolve_device(config.device)
        seed_everything(0)
        loaded = load_dataset(data, config, run, device)
        start = time.perf_counter()
        result = train(
            build(model, width, num_classes=len(CLASSES)), loaded.train, loaded.test,
            loaded.preprocess, config, seed=0, progress=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        first, second = result.history
        rows.append(
            {
                "model": model,
                "width": width,
                "batch_size": batch,
                "compiled": compiled,
                "precision": result.precision,
                # The second epoch's steps: the first pays the compile and the autotuning.
                "images_per_second": round(config.train_subset / max(second.seconds, 1e-9), 1),
                "startup_s": round(max(first.seconds - second.seconds, 0.0), 1),
                "wall_s": round(wall, 1),
                "peak_memory_mib": None
                if result.peak_memory_bytes is None
                else round(result.peak_memory_bytes / 2**20),
            }
        )
    return rows


def precision_pair(
    data: Path, params: dict[str, Any], epochs: int, width: float, budget: Budget
) -> dict[str, Any]:
    """Section 2: the same run in fp32 and in bf16 steps, and their paired test."""
    run = Run(GridPoint("mobilenet_v1", width, 1.0), 0)
    outcome: dict[str, Any] = {"model": run.name, "epochs": epochs}
    predictions = {}
    for precision in ("fp32", "bf16"):
        if budget.left() < 0:
            outcome["skipped"] = "budget spent"
            return outcome
        config = recipe(params, epochs=epochs, precision=precision, compile=False)
        device = resolve_device(config.device)
        seed_everything(0)
        loaded = load_dataset(data, config, run, device)
        start = time.perf_counter()
        result = train(
            build(run.model, run.width, num_classes=len(CLASSES)), loaded.train, loaded.test,
            loaded.preprocess, config, seed=0, progress=False,
        )  # fmt: skip
        labels = loaded.test.labels.cpu()
        predictions[precision] = (result.test_predictions == labels).numpy()
        outcome[precision] = {
            "test_accuracy": round(result.history[-1].test_accuracy, 4),
            "wall_s": round(time.perf_counter() - start, 1),
        }
    test = paired_comparison(predictions["fp32"], predictions["bf16"])
    outcome["bf16_minus_fp32_points"] = round(test.points, 2)
    outcome["mcnemar_p"] = test.p_value
    outcome["test_images"] = len(predictions["fp32"])
    return outcome


def grid_estimate(
    params: dict[str, Any], rates: list[dict[str, Any]], workers: int
) -> dict[str, Any]:
    """Section 3: the full grid priced at the measured rates (extrapolated, not run).

    Each run at its model's nearest measured α, 50,000 images × ``train.epochs``, plus its
    start-up. Two bounds for ρ < 1: the rate at 32 px (an upper bound on the time: a step
    bound by kernel launches costs the same at fewer pixels) and that rate scaled by pixels
    (a lower bound). With ``workers`` trainers sharing the GPU the wall time is at least the
    larger of a fair share and the longest run, and at most the sequential total (the rates
    were measured with the GPU to one trainer).
    """
    measured = {(r["model"], r["width"]): r for r in rates if "images_per_second" in r}
    if not measured:
        return {"skipped": "no rate measured"}
    epochs = params["train"]["epochs"]
    upper, lower, longest, priced, missing = 0.0, 0.0, 0.0, [], []
    for run in Grid.from_params(params).runs:
        same = [key for key in measured if key[0] == run.model]
        if not same:
            missing.append(run.name)
            continue
        key = min(same, key=lambda k: abs(k[1] - run.width))
        rate, startup = measured[key]["images_per_second"], measured[key]["startup_s"]
        at_full_side = FULL_TRAIN_IMAGES * epochs / rate + startup
        by_pixels = FULL_TRAIN_IMAGES * epochs / (rate * (32 / run.input_size) ** 2) + startup
        upper, lower = upper + at_full_side, lower + by_pixels
        longest = max(longest, by_pixels)
        priced.append(run.name)
    return {
        "label": "extrapolated from section 1's rates, not measured",
        "compiled": bool(rates and rates[0].get("compiled")),
        "runs": len(priced),
        "not_priced": missing,
        "one_after_another_s": [round(lower), round(upper)],
        f"{workers}_workers_s": [round(max(lower / workers, longest)), round(upper)],
    }


def write_subset(source: Path, target: Path, train_images: int, test_images: int) -> None:
    """A prepared folder holding a class-balanced subset of ``source``'s splits (the same
    subsets the runs draw with ``train.train_subset`` / ``test_subset``)."""
    splits = {
        split: Split(*load_subset(source, split, size))
        for split, size in (("train", train_images), ("test", test_images))
    }
    mean, std = channel_stats(splits["train"].images)
    origin = Source(str(source), IMAGE_FOLDER, source)
    # The format only labels metrics/data.json, which the check does not write.
    format_ = "jpeg"
    save_prepared(PreparedData(origin, format_, splits, mean, std, content_sha256(splits)), target)


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# GPU check, {report['device']}", "", f"torch {report['torch']}; {report['cpu']}"]
    lines += [
        "",
        "| model | α | batch | compiled | precision | img/s | start-up s | peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["throughput"]:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['width']} | {r['skipped']} | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['width']} | {r['batch_size']} | {r['compiled']} | "
            f"{r['precision']} | {r['images_per_second']:,.0f} | {r['startup_s']} | "
            f"{r['peak_memory_mib']} |"
        )
    pair = {k: v for k, v in report["precision"].items() if k not in ("model", "epochs")}
    title = f"{report['precision']['model']}, {report['precision']['epochs']} epochs"
    lines += ["", f"bf16 against fp32 ({title}): {json.dumps(pair, ensure_ascii=False)}"]
    lines += ["", f"Full profile: {json.dumps(report['grid'], ensure_ascii=False)}", ""]
    lines += [f"Sections took {report['seconds']} s in all."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--budget-s", type=float, default=540.0)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per model size")
    parser.add_argument("--epochs", type=int, default=3, help="of the bf16/fp32 pair")
    parser.add_argument("--workers", type=int, default=4, help="trainers sharing the GPU")
    parser.add_argument("--compile", action="store_true", help="also time compiled steps")
    parser.add_argument("--set", action="append", default=[], help="train.KEY=VALUE")
    parser.add_argument("--toy", action="store_true", help="tiny sizes, for a CPU test")
    parser.add_argument("--make-subset", metavar="TRAIN,TEST", help="write a subset to --out")
    args = parser.parse_args()
    if args.make_subset:
        train_images, test_images = (int(n) for n in args.make_subset.split(","))
        write_subset(args.data, args.out, train_images, test_images)
        return

    params = load_params(args.params)
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        params[section] = {**params[section], name: yaml.safe_load(value)}
    sizes = TOY_SIZES if args.toy else SIZES
    budget = Budget(args.budget_s)
    start = time.perf_counter()
    device = resolve_device(recipe(params).device)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": cpu_description(),
        "host": platform.node(),
        "data": str(args.data),
    }
    section_start = time.perf_counter()
    report["throughput"] = throughput(args.data, params, sizes, args.steps, False, budget)
    if args.compile:
        report["throughput"] += throughput(args.data, params, sizes, args.steps, True, budget)
    report["throughput_s"] = round(time.perf_counter() - section_start, 1)
    section_start = time.perf_counter()
    width = 0.25 if args.toy else 0.5
    report["precision"] = precision_pair(args.data, params, args.epochs, width, budget)
    report["precision_s"] = round(time.perf_counter() - section_start, 1)
    # Priced at the rates of the way the profile trains: compiled if it compiles and they were
    # measured.
    compiled = [r for r in report["throughput"] if r.get("compiled")]
    eager = [r for r in report["throughput"] if r.get("compiled") is False]
    use_compiled = bool(compiled) and bool(recipe(params).compile)
    report["grid"] = grid_estimate(params, compiled if use_compiled else eager, args.workers)
    report["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
