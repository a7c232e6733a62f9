"""A tiny training run in its own process, for tests/test_resume.py to kill and resume.

    python -m tests.resume_worker CHECKPOINT RESULT_JSON [--die-after EPOCH:STEP]

``--die-after`` sends this process SIGKILL right after the checkpoint of that (0-based) epoch
and step is written, as `kill -9` would at that moment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
from dataclasses import asdict, replace
from pathlib import Path

import torch

from mobilenet_study.models import build
from mobilenet_study.training import loop
from mobilenet_study.training.pipeline import DeviceDataset, Preprocess
from mobilenet_study.training.recipe import TrainParams, seed_everything

from .test_train import EVERY_STEP, TINY, synthetic_split

CONFIG = {**TINY, "epochs": 3, "ema_decay": 0.9, "flip": "alternating"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--die-after", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.die_after:
        epoch, step = (int(part) for part in args.die_after.split(":"))
        real_save = loop.save_checkpoint

        def save_then_die(path, key, objects, state) -> None:
            real_save(path, key, objects, state)
            cursor = state.cursor
            if cursor is not None and (cursor.epoch, cursor.step) == (epoch, step):
                os.kill(os.getpid(), signal.SIGKILL)

        loop.save_checkpoint = save_then_die
    config = replace(TrainParams.from_params({"train": CONFIG}), checkpoint_minutes=EVERY_STEP)
    device = torch.device("cpu")
    seed_everything(0)
    train_data = DeviceDataset.from_arrays(*synthetic_split(1200, 1), device)
    test_data = DeviceDataset.from_arrays(*synthetic_split(200, 2), device)
    preprocess = Preprocess.create((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 16, device)
    result = loop.train(
        build("mobilenet_v1", 0.25), train_data, test_data, preprocess, config,
        checkpoint=args.checkpoint, checkpoint_key="tiny", progress=False,
    )  # fmt: skip
    weights = hashlib.sha256()
    for name, tensor in sorted(result.model.state_dict().items()):
        weights.update(name.encode() + tensor.detach().contiguous().numpy().tobytes())
    summary = {
        "history": [asdict(r) | {"seconds": 0} for r in result.history],
        "weights": weights.hexdigest(),
        "resumed_from_epoch": result.resumed_from_epoch,
    }
    args.result.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
