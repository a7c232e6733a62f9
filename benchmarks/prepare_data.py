"""Time preparing CIFAR-10 from the 60,000-image JPEG mirror, and loading the prepared arrays.

    .venv/bin/python benchmarks/prepare_data.py [MIRROR] [--workers N]

MIRROR defaults to ../shared/data/cifar10-jpeg beside the repository. Outputs go to a temporary
folder; nothing in the repository is touched. Goals on a 2-core machine: prepare <= 15 s,
load <= 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mobilenet_study.data.cifar import OFFICIAL_MD5, SPLITS
from mobilenet_study.data.prepare import prepare
from mobilenet_study.data.prepared import load_split, save_prepared
from mobilenet_study.data.source import DataParams

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", nargs="?", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes")
    args = parser.parse_args()
    if not args.mirror.is_dir():
        raise SystemExit(f"no image-folder mirror at {args.mirror}")
    params = DataParams(source=str(args.mirror), md5=OFFICIAL_MD5, timeout_s=60.0, retries=0)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data = prepare(
            params, root=REPO_ROOT, download_dir=Path(tmp) / "downloads", workers=args.workers
        )
        decoded = time.perf_counter()
        save_prepared(data, Path(tmp) / "prepared")
        saved = time.perf_counter()
        sizes = {split: len(data.splits[split]) for split in SPLITS}

        load_start = time.perf_counter()
        for split in SPLITS:
            images, labels = load_split(Path(tmp) / "prepared", split)
            assert len(images) == len(labels) == sizes[split]
        loaded = time.perf_counter()

    print(f"source: {args.mirror} ({data.source.kind}, {data.image_format})")
    print(f"images: {sizes}")
    print(f"prepare (read, decode, stats, hash): {decoded - start:6.2f} s")
    print(f"save npz:                            {saved - decoded:6.2f} s")
    print(f"prepare + save:                      {saved - start:6.2f} s   (goal <= 15 s)")
    print(f"load train + test:                   {loaded - load_start:6.2f} s   (goal <= 1 s)")
    print(
        f"mean {tuple(round(m, 4) for m in data.mean)}, std {tuple(round(s, 4) for s in data.std)}"
    )


if __name__ == "__main__":  # the guard lets decoding workers (spawned) import this file
    main()
