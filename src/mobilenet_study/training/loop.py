"""The training loop: epochs of SGD steps on batches the data pipeline prepares on the device,
an evaluation after each, checkpoints by wall time (mid-epoch too), and the result."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from mobilenet_study import params as p
from mobilenet_study.allocator import keep_freed_memory
from mobilenet_study.params import StudyError
from mobilenet_study.training.checkpoint import (
    EpochCursor,
    Resumable,
    TrainingState,
    read_checkpoint,
    restore,
    save_checkpoint,
)
from mobilenet_study.training.pipeline import DeviceDataset, Preprocess, augment
from mobilenet_study.training.progress import ProgressFile
from mobilenet_study.training.recipe import (
    TrainParams,
    make_optimizer,
    make_schedule,
    resolve_precision,
)

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
    model: nn.Module  # the weights evaluated: the moving average when train.ema_decay > 0
    history: list[EpochRecord]
    train_seconds: float
    step_seconds: float
    images_trained: int
    peak_memory_bytes: int | None
    resumed_from_epoch: int
    test_predictions: torch.Tensor  # predicted class per test image, after the last epoch
    precision: str = "fp32"  # of the training steps: fp32 or bf16


@dataclass
class _Steps:
    """What every epoch of one call of :func:`train` works with."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    objects: Resumable
    autocast: Autocast
    steps_per_epoch: int
    flip_base: torch.Tensor | None  # alternating flips: each image's coin in the first epoch
    precision: str

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are evaluated and kept: the moving average if there is one."""
        ema = self.objects.ema
        return ema.module if ema is not None else self.objects.model


def autocast_for(device: torch.device, precision: str) -> Autocast:
    """The training steps' precision: bf16 autocast, or plain fp32 (train.precision, resolved
    by :func:`~.recipe.resolve_precision`)."""

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
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
    tta: str = "none",
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy, and the predictions, in fp32 on every device (so that the same
    weights score the same on a GPU and a CPU). ``tta="flip"`` scores the mean of the logits
    of each image and its mirror image. Sums stay on the device until the end."""
    model.eval()
    loss_sum = torch.zeros((), device=data.labels.device)
    predictions = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x = preprocess(data.images[start : start + batch_size])
            y = data.labels[start : start + batch_size]
            logits = model(x).float()
            if tta == "flip":
                logits = (logits + model(x.flip(3)).float()) / 2
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions)
    accuracy = (predicted == data.labels).float().mean()
    return loss_sum.item() / len(data), accuracy.item(), predicted


class _Checkpoints:
    """Writes the run's checkpoint every ``interval_s`` of wall time (none without a path)."""

    def __init__(self, path: Path | None, key: str, interval_s: float) -> None:
        self.path, self.key, self.interval_s = path, key, interval_s
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.path is not None and time.monotonic() - self.last >= self.interval_s

    def save(self, objects: Resumable, state: TrainingState) -> None:
        save_checkpoint(self.path, self.key, objects, state)
        self.last = time.monotonic()


def _new_cursor(epoch: int, size: int, steps: _Steps, device: torch.device) -> EpochCursor:
    order = torch.randperm(size, device=device, generator=steps.objects.generator)
    zero = torch.zeros((), device=device)
    return EpochCursor(epoch, 0, order, zero, zero.long(), 0.0, 0.0, 0.0)


def _flip_mask(steps: _Steps, index: torch.Tensor, epoch: int) -> torch.Tensor | None:
    if steps.flip_base is None:
        return None  # a fresh coin per image, drawn by augment()
    return steps.flip_base[index] ^ bool(epoch % 2)


def _train_steps(
    data: DeviceDataset,
    preprocess: Preprocess,
    config: TrainParams,
    steps: _Steps,
    cursor: EpochCursor,
    on_step: Callable[[EpochCursor], None],
) -> None:
    """The epoch's remaining SGD steps from ``cursor`` on, which they advance."""
    objects = steps.objects
    objects.model.train()
    while cursor.step < steps.steps_per_epoch:
        start = time.perf_counter()
        first = cursor.step * config.batch_size
        index = cursor.order[first : first + config.batch_size]
        flip = _flip_mask(steps, index, cursor.epoch)
        x = preprocess(augment(data.images[index], config.crop_padding, objects.generator, flip))
        y = data.labels[index]
        with _oom_hint(config.batch_size), steps.autocast():
            logits = steps.forward(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        objects.optimizer.zero_grad(set_to_none=True)
        with _oom_hint(config.batch_size):
            loss.backward()
        objects.optimizer.step()
        cursor.lr = objects.optimizer.param_groups[0]["lr"]  # the rate this step used
        objects.schedule.step()
        if objects.ema is not None:
            objects.ema.update_parameters(objects.model)
        # Accumulate on the device: no host sync inside the epoch.
        cursor.loss_sum = cursor.loss_sum + loss.detach() * len(y)
        cursor.correct = cursor.correct + (logits.argmax(1) == y).sum()
        cursor.step += 1
        elapsed = time.perf_counter() - start
        cursor.step_seconds += elapsed
        cursor.seconds += elapsed
        on_step(cursor)


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
    progress_file: Path | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` with the recipe in ``config``; resume from ``checkpoint`` if it matches.

    ``seed`` drives the batch order and augmentation (the caller seeds the initial weights with
    :func:`~.recipe.seed_everything` before building the model). A checkpoint is written every
    ``checkpoint.minutes`` of wall time, and ``progress_file`` (if given) says where the run
    stands. ``on_epoch`` sees each finished epoch, in order; on a resumed run it is first
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
    steps = _prepare(model, config, seed, device, len(train_data))
    state = _resume(checkpoint, checkpoint_key, steps, device)
    history = [EpochRecord(**record) for record in state.history]
    for record in history:
        if on_epoch:
            on_epoch(record)
    start_epoch = len(history)
    saver = _Checkpoints(checkpoint, checkpoint_key, config.checkpoint_minutes * 60)
    status = ProgressFile(progress_file, config.epochs, steps.steps_per_epoch)
    for epoch in range(start_epoch, config.epochs):
        cursor = state.cursor
        if cursor is None or cursor.epoch != epoch:
            cursor = _new_cursor(epoch, len(train_data), steps, device)
        record, cursor = _epoch(
            train_data, test_data, preprocess, config, steps, cursor, progress,
            on_step=functools.partial(_between_steps, saver, status, steps, history, state),
        )  # fmt: skip
        history.append(record)
        state = TrainingState(
            [asdict(r) for r in history],
            state.elapsed + record.seconds,
            state.step_seconds + cursor.step_seconds,
        )
        status.update(len(history), 0, state.elapsed, state.step_seconds)
        if saver.due():
            saver.save(steps.objects, state)
        if on_epoch:
            on_epoch(record)
    return _result(test_data, preprocess, config, steps, history, state, start_epoch)


def _between_steps(
    saver: _Checkpoints,
    status: ProgressFile,
    steps: _Steps,
    history: list[EpochRecord],
    state: TrainingState,
    cursor: EpochCursor,
) -> None:
    """After each step: the checkpoint and the progress file, when they are due."""
    if saver.due():
        mid = TrainingState([asdict(r) for r in history], state.elapsed, state.step_seconds, cursor)
        saver.save(steps.objects, mid)
    if status.due():
        status.update(
            cursor.epoch, cursor.step, state.elapsed + cursor.seconds,
            state.step_seconds + cursor.step_seconds,
        )  # fmt: skip


def _epoch(
    train_data: DeviceDataset,
    test_data: DeviceDataset,
    preprocess: Preprocess,
    config: TrainParams,
    steps: _Steps,
    cursor: EpochCursor,
    progress: bool,
    on_step: Callable[[EpochCursor], None],
) -> tuple[EpochRecord, EpochCursor]:
    """Train the rest of the epoch from ``cursor``, then evaluate: its record and cursor."""
    device = train_data.images.device
    bar = None
    if progress:
        bar = tqdm(
            total=steps.steps_per_epoch, initial=cursor.step, unit="batch", leave=False,
            desc=f"epoch {cursor.epoch + 1}/{config.epochs}",
        )  # fmt: skip

    def step_done(c: EpochCursor) -> None:
        if bar is not None:
            bar.update(1)
        on_step(c)

    _train_steps(train_data, preprocess, config, steps, cursor, step_done)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    images_per_second = steps.steps_per_epoch * config.batch_size / max(cursor.step_seconds, 1e-9)
    if bar is not None:
        bar.set_postfix_str(f"{images_per_second:,.0f} img/s")
        bar.close()
    evaluation_start = time.perf_counter()
    test_loss, test_accuracy, _ = evaluate(
        steps.evaluated, test_data, preprocess, config.eval_batch_size, config.tta
    )
    cursor.seconds += time.perf_counter() - evaluation_start
    seen = steps.steps_per_epoch * config.batch_size
    record = EpochRecord(
        cursor.epoch + 1,
        cursor.loss_sum.item() / seen,
        cursor.correct.item() / seen,
        test_loss,
        test_accuracy,
        cursor.lr,
        cursor.seconds,
    )
    if not progress:
        _report(record, config.epochs, images_per_second)
    return record, cursor


def _prepare(
    model: nn.Module, config: TrainParams, seed: int, device: torch.device, train_size: int
) -> _Steps:
    """The model on the device, the optimiser, schedule, generator and average for one run."""
    if device.type == "cpu":
        keep_freed_memory()  # CPU steps otherwise map and fault in their buffers anew each time
    # channels_last (NHWC) suits depthwise and 1x1 convs on both oneDNN and cuDNN; Preprocess
    # hands batches over in the same layout.
    model.to(device=device, memory_format=torch.channels_last)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = config.bn_momentum
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    optimizer = make_optimizer(model, config)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    steps_per_epoch = train_size // config.batch_size
    precision = resolve_precision(config.precision, device, model)
    ema = None
    if config.ema_decay > 0:
        # BatchNorm's running statistics are averaged too (use_buffers), so the averaged
        # weights are evaluated with statistics that match them.
        ema = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
        )
    flip_base = None
    if config.flip == "alternating":
        flip_base = torch.rand(train_size, device=device, generator=generator) < 0.5
    return _Steps(
        forward=torch.compile(model) if config.compile else model,
        objects=Resumable(
            model, optimizer, make_schedule(optimizer, config, steps_per_epoch), generator, ema
        ),
        autocast=autocast_for(device, precision),
        steps_per_epoch=steps_per_epoch,
        flip_base=flip_base,
        precision=precision,
    )


def _resume(path: Path | None, key: str, steps: _Steps, device: torch.device) -> TrainingState:
    """The state of a matching checkpoint at ``path``, loaded; else a fresh start."""
    payload = read_checkpoint(path, key) if path is not None else None
    state = restore(path, payload, steps.objects) if payload is not None else None
    if state is None:
        return TrainingState([], 0.0, 0.0)
    cursor = state.cursor
    where = f"after epoch {len(state.history)}"
    if cursor is not None:
        cursor.order = cursor.order.to(device)
        cursor.loss_sum = cursor.loss_sum.to(device)
        cursor.correct = cursor.correct.to(device)
        where = f"at epoch {cursor.epoch + 1}, step {cursor.step}"
    print(f"resuming from {path} {where}", file=sys.stderr)
    return state


def _result(
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
        steps.evaluated, test_data, preprocess, config.eval_batch_size, config.tta
    )
    return TrainResult(
        model=steps.evaluated,
        history=history,
        train_seconds=state.elapsed,
        step_seconds=state.step_seconds,
        images_trained=steps.steps_per_epoch * config.batch_size * config.epochs,
        peak_memory_bytes=peak,
        resumed_from_epoch=start_epoch,
        test_predictions=predictions.cpu(),
        precision=steps.precision,
    )
