"""The training loop: epochs of SGD steps on batches the data pipeline prepares on the device,
an evaluation on the test split after each, a checkpoint after each, and the result."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mobilenet_study import params as p
from mobilenet_study.allocator import keep_freed_memory
from mobilenet_study.params import StudyError
from mobilenet_study.training.checkpoint import (
    TrainingState,
    read_checkpoint,
    restore,
    save_checkpoint,
)
from mobilenet_study.training.pipeline import DeviceDataset, Preprocess, augment
from mobilenet_study.training.recipe import TrainParams, make_optimizer, make_schedule

Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochRecord]
    train_seconds: float
    step_seconds: float
    images_trained: int
    peak_memory_bytes: int | None
    resumed_from_epoch: int
    test_predictions: torch.Tensor  # predicted class per test image, after the last epoch


@dataclass
class _Steps:
    """What every epoch of one call of :func:`train` works with."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    autocast: Autocast
    steps_per_epoch: int


def autocast_for(device: torch.device) -> Autocast:
    """bf16 autocast on CUDA; on the CPU plain fp32: without bf16 units bf16 is ~100x slower,
    and with them it sped up only the baseline, not MobileNets, and its accuracy cost is not
    yet measured (benchmarks/results/cpu-2core-2026-12-02.md)."""

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    return autocast


@contextlib.contextmanager
def _oom_hint(batch_size: int) -> Iterator[None]:
    try:
        yield
    except torch.cuda.OutOfMemoryError as err:
        raise StudyError(
            f"CUDA ran out of memory at train.batch_size={batch_size}: lower train.batch_size "
            "(and train.eval_batch_size), e.g. `dvc exp run -S train.batch_size=256`"
        ) from err


def evaluate(
    model: nn.Module,
    data: DeviceDataset,
    preprocess: Preprocess,
    batch_size: int,
    autocast: Autocast,
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy, and the predictions; sums stay on the device until the end."""
    model.eval()
    loss_sum = torch.zeros((), device=data.labels.device)
    predictions = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x = preprocess(data.images[start : start + batch_size])
            y = data.labels[start : start + batch_size]
            with autocast():
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions)
    accuracy = (predicted == data.labels).float().mean()
    return loss_sum.item() / len(data), accuracy.item(), predicted


def _train_epoch(
    model: nn.Module,
    data: DeviceDataset,
    preprocess: Preprocess,
    config: TrainParams,
    steps: _Steps,
    bar: tqdm | None,
) -> tuple[float, float, float]:
    """One pass of SGD steps: mean loss, accuracy on the batches trained on, the last rate."""
    device = data.images.device
    model.train()
    order = torch.randperm(len(data), device=device, generator=steps.generator)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    lr = 0.0
    for step in range(steps.steps_per_epoch):
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        x = preprocess(augment(data.images[index], config.crop_padding, steps.generator))
        y = data.labels[index]
        with _oom_hint(config.batch_size), steps.autocast():
            logits = steps.forward(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        steps.optimizer.zero_grad(set_to_none=True)
        with _oom_hint(config.batch_size):
            loss.backward()
        steps.optimizer.step()
        lr = steps.optimizer.param_groups[0]["lr"]  # the rate this step used
        steps.schedule.step()
        # Accumulate on the device: no host sync inside the epoch.
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        if bar is not None:
            bar.update(1)
    seen = steps.steps_per_epoch * config.batch_size
    return loss_sum.item() / seen, correct.item() / seen, lr


def _progress_bar(total: int, epoch: int, epochs: int, enabled: bool) -> tqdm | None:
    if not enabled:
        return None
    return tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)


def _report(record: EpochRecord, epochs: int, images_per_second: float) -> None:
    print(
        f"epoch {record.epoch}/{epochs}: train loss {record.train_loss:.4f}, "
        f"test loss {record.test_loss:.4f}, test accuracy {record.test_accuracy:.4f}, "
        f"{images_per_second:,.0f} img/s, {record.seconds:.1f} s",
        flush=True,
    )


def train(
    model: nn.Module,
    train_data: DeviceDataset,
    test_data: DeviceDataset,
    preprocess: Preprocess,
    config: TrainParams,
    *,
    seed: int = 0,
    checkpoint: Path | None = None,
    checkpoint_key: str = "",
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` with the recipe in ``config``; resume from ``checkpoint`` if it matches.

    ``seed`` drives the batch order and augmentation (the caller seeds the initial weights with
    :func:`~.recipe.seed_everything` before building the model). ``on_epoch`` sees each
    finished epoch (after its checkpoint is written), in order; on a resumed run it is first
    called for the epochs done before the interruption.
    """
    device = train_data.images.device
    if len(train_data) < config.batch_size:
        raise p.ParamError(
            "train.batch_size",
            config.batch_size,
            f"must not exceed the number of training images ({len(train_data)})",
        )
    progress = sys.stderr.isatty() if progress is None else progress
    steps = _prepare(model, config, seed, device, len(train_data) // config.batch_size)
    state = _resume(checkpoint, checkpoint_key, model, steps)
    history = [EpochRecord(**record) for record in state.history]
    for record in history:
        if on_epoch:
            on_epoch(record)
    start_epoch = len(history)
    for epoch in range(start_epoch, config.epochs):
        record, train_time = _epoch(
            model, train_data, test_data, preprocess, config, steps, epoch, progress
        )
        history.append(record)
        state = TrainingState(
            [asdict(r) for r in history],
            state.elapsed + record.seconds,
            state.step_seconds + train_time,
        )
        if checkpoint is not None:
            save_checkpoint(
                checkpoint, checkpoint_key, model, steps.optimizer, steps.schedule,
                steps.generator, state,
            )  # fmt: skip
        if on_epoch:
            on_epoch(record)
    return _result(model, test_data, preprocess, config, steps, history, state, start_epoch)


def _epoch(
    model: nn.Module,
    train_data: DeviceDataset,
    test_data: DeviceDataset,
    preprocess: Preprocess,
    config: TrainParams,
    steps: _Steps,
    epoch: int,
    progress: bool,
) -> tuple[EpochRecord, float]:
    """Train one epoch, then evaluate: its record, and the seconds its training steps took."""
    device = train_data.images.device
    epoch_start = time.perf_counter()
    bar = _progress_bar(steps.steps_per_epoch, epoch, config.epochs, progress)
    train_loss, train_accuracy, lr = _train_epoch(model, train_data, preprocess, config, steps, bar)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_time = time.perf_counter() - epoch_start
    images_per_second = steps.steps_per_epoch * config.batch_size / train_time
    if bar is not None:
        bar.set_postfix_str(f"{images_per_second:,.0f} img/s")
        bar.close()
    test_loss, test_accuracy, _ = evaluate(
        model, test_data, preprocess, config.eval_batch_size, steps.autocast
    )
    seconds = time.perf_counter() - epoch_start
    record = EpochRecord(
        epoch + 1, train_loss, train_accuracy, test_loss, test_accuracy, lr, seconds
    )
    if not progress:
        _report(record, config.epochs, images_per_second)
    return record, train_time


def _prepare(
    model: nn.Module, config: TrainParams, seed: int, device: torch.device, steps_per_epoch: int
) -> _Steps:
    """The model on the device, the optimiser, schedule and generator for one run."""
    if device.type == "cpu":
        keep_freed_memory()  # CPU steps otherwise map and fault in their buffers anew each time
    # channels_last (NHWC) suits depthwise and 1x1 convs on both oneDNN (CPU: 1.5-1.7x per
    # training step here) and cuDNN; Preprocess hands batches over in the same layout.
    model.to(device=device, memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    optimizer = make_optimizer(model, config)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return _Steps(
        forward=torch.compile(model) if config.compile else model,
        optimizer=optimizer,
        schedule=make_schedule(optimizer, config, steps_per_epoch),
        generator=generator,
        autocast=autocast_for(device),
        steps_per_epoch=steps_per_epoch,
    )


def _resume(path: Path | None, key: str, model: nn.Module, steps: _Steps) -> TrainingState:
    """The state of a matching checkpoint at ``path``, loaded; else a fresh start."""
    payload = read_checkpoint(path, key) if path is not None else None
    if payload is None:
        return TrainingState([], 0.0, 0.0)
    state = restore(path, payload, model, steps.optimizer, steps.schedule, steps.generator)
    print(f"resuming from {path} after epoch {len(state.history)}", file=sys.stderr)
    return state


def _result(
    model: nn.Module,
    test_data: DeviceDataset,
    preprocess: Preprocess,
    config: TrainParams,
    steps: _Steps,
    history: list[EpochRecord],
    state: TrainingState,
    start_epoch: int,
) -> TrainResult:
    device = test_data.images.device
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    # Evaluation is deterministic, so this repeats the last epoch's numbers (also on a resumed
    # run that had nothing left to train) and keeps the predictions for the confusion matrix.
    _, _, predictions = evaluate(
        model, test_data, preprocess, config.eval_batch_size, steps.autocast
    )
    return TrainResult(
        model=model,
        history=history,
        train_seconds=state.elapsed,
        step_seconds=state.step_seconds,
        images_trained=steps.steps_per_epoch * config.batch_size * config.epochs,
        peak_memory_bytes=peak,
        resumed_from_epoch=start_epoch,
        test_predictions=predictions.cpu(),
    )
