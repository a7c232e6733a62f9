"""glibc malloc left at its defaults against the project's settings (mobilenet_study.allocator),
side by side: the same training epoch in fresh processes, alternating, several rounds.

Each child trains one epoch of ``--images`` training images with the stages' loop
(`mobilenet_study.training.loop.train`) and reports images per second, minor page faults and
kernel (system) CPU time; the parent prints each side's median and the ratio.

    python benchmarks/allocator.py --data ../shared/data/cifar10-jpeg \\
        --model mobilenet_v1 --width 1.0 --resolution 1.0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

SIDES = {"glibc defaults": "default", "project settings": "project"}


def child(args: argparse.Namespace) -> None:
    # Imported here, in the child only: the parent just starts children and compares them.
    import numpy as np
    import torch

    from mobilenet_study import allocator
    from mobilenet_study.data.prepared import channel_stats
    from mobilenet_study.grid import input_size
    from mobilenet_study.models import build
    from mobilenet_study.training.loop import train
    from mobilenet_study.training.pipeline import DeviceDataset, Preprocess

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import base_config, load_train_images

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    images, labels = load_train_images(args.data)
    keep = np.random.default_rng(0).permutation(len(labels))[: args.images]
    images, labels = images[keep], labels[keep]
    device = torch.device("cpu")
    mean, std = channel_stats(images)
    preprocess = Preprocess.create(mean, std, input_size(args.resolution), device)
    data = DeviceDataset.from_arrays(images, labels, device)
    test = DeviceDataset.from_arrays(images[:10], labels[:10], device)
    config = replace(base_config("cpu", args.batch_size), epochs=1)
    torch.manual_seed(0)
    model = build(args.model, args.width)
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = train(model, data, test, preprocess, config, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "applied": allocator.keep_freed_memory(),
                "images_per_s": result.images_trained / result.step_seconds,
                "minor_faults": after.ru_minflt - before.ru_minflt,
                "system_s": after.ru_stime - before.ru_stime,
                "user_s": after.ru_utime - before.ru_utime,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared folder or mirror")
    parser.add_argument("--model", default="mobilenet_v1")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--resolution", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    command = [sys.executable, __file__, "--child", *sys.argv[1:]]
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for _ in range(args.rounds):
        for side, setting in SIDES.items():
            env = dict(os.environ, MOBILENET_STUDY_MALLOC=setting)
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            results[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"{args.model} α={args.width} ρ={args.resolution}, batch {args.batch_size}, one epoch "
        f"of {args.images:,} images, {len(os.sched_getaffinity(0))} threads, "
        f"{args.rounds} rounds (median)"
    )
    medians = {}
    for side, runs in results.items():
        medians[side] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        m = medians[side]
        print(
            f"  {side:17s} {m['images_per_s']:8,.0f} img/s  {m['minor_faults'] / 1e6:6.2f} M "
            f"minor faults  kernel {m['system_s']:5.1f} s  user {m['user_s']:6.1f} s "
            f"(applied: {bool(m['applied'])})"
        )
    ratio = medians["project settings"]["images_per_s"] / medians["glibc defaults"]["images_per_s"]
    print(f"  ratio project/defaults: {ratio:.2f}x")


if __name__ == "__main__":
    main()
