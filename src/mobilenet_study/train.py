"""Training one grid point: the whole dataset on the device, batched augmentation, one loop.

The prepared uint8 images move to the training device once. Each batch is cropped (with
padding), flipped, resized to round(ρ · 32) and normalised by tensor operations on that device —
no DataLoader, no per-sample Python work (the approach of the fastest public CIFAR-10 trainers).

An epoch checkpoint (model, optimiser, schedule, random state, curves) lets an interrupted run
resume where it stopped; the final metrics then equal those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mobilenet_study import params as p
from mobilenet_study.allocator import keep_freed_memory
from mobilenet_study.grid import Run
from mobilenet_study.outputs import atomic_path
from mobilenet_study.params import StudyError

DEVICES = ("auto", "cpu", "cuda")
# Subsets are drawn with this seed, not the run's: every run and seed trains and is tested on
# the same images, so that two runs' test predictions can be paired image by image.
SUBSET_SEED = 0


@dataclass(frozen=True)
class TrainParams:
    """params.yaml `train:` — the recipe shared by every run of the grid."""

    device: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    warmup_epochs: float
    crop_padding: int
    train_subset: int
    test_subset: int
    eval_batch_size: int
    compile: bool

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainParams:
        s = "train"
        p.known_keys(params, s, [field.name for field in fields(cls)])
        config = cls(
            device=p.choice(params, f"{s}.device", DEVICES),
            epochs=p.integer(params, f"{s}.epochs", low=1),
            batch_size=p.integer(params, f"{s}.batch_size", low=1),
            lr=p.number(params, f"{s}.lr", low=0.0, low_inclusive=False),
            momentum=p.number(params, f"{s}.momentum", low=0.0, high=1.0),
            nesterov=p.boolean(params, f"{s}.nesterov"),
            weight_decay=p.number(params, f"{s}.weight_decay", low=0.0),
            label_smoothing=p.number(params, f"{s}.label_smoothing", low=0.0, high=0.99),
            warmup_epochs=p.number(params, f"{s}.warmup_epochs", low=0.0),
            crop_padding=p.integer(params, f"{s}.crop_padding", low=0, high=16),
            train_subset=p.integer(params, f"{s}.train_subset", low=0),
            test_subset=p.integer(params, f"{s}.test_subset", low=0),
            eval_batch_size=p.integer(params, f"{s}.eval_batch_size", low=1),
            compile=p.boolean(params, f"{s}.compile"),
        )
        if config.nesterov and config.momentum == 0:
            raise p.ParamError(f"{s}.momentum", 0, "Nesterov momentum needs train.momentum > 0")
        if config.warmup_epochs > config.epochs:
            raise p.ParamError(
                f"{s}.warmup_epochs",
                config.warmup_epochs,
                f"must not exceed train.epochs ({config.epochs}): the rate would never decay",
            )
        return config


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU with a one-line warning and all cores
    (OMP_NUM_THREADS, when set, says how many: queued shards share the cores)."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise p.ParamError("train.device", "cuda", "CUDA is not available here; use auto or cpu")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if requested == "auto" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
        print(
            f"warning: no CUDA device; training on the CPU with {torch.get_num_threads()} threads",
            file=sys.stderr,
        )
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced random subset of ``size`` items (0 = all), sorted."""
    if size == 0 or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen = []
    for k, cls in enumerate(classes):
        members = np.flatnonzero(labels == cls)
        # Spread the remainder over the first classes so the total is exactly `size`.
        share = size // len(classes) + (1 if k < size % len(classes) else 0)
        chosen.append(rng.choice(members, size=min(share, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass
class DeviceDataset:
    """A split held on the training device as uint8 NCHW images and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(
        cls, images: np.ndarray, labels: np.ndarray, device: torch.device
    ) -> DeviceDataset:
        tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        return cls(tensor.contiguous().to(device), torch.from_numpy(labels).long().to(device))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Preprocess:
    """uint8 batch -> normalised float batch at the run's input size, on the device."""

    mean: torch.Tensor  # (1, 3, 1, 1), in [0, 1] units
    std: torch.Tensor
    input_size: int

    @classmethod
    def create(
        cls, mean: tuple[float, ...], std: tuple[float, ...], input_size: int, device: torch.device
    ) -> Preprocess:
        shape = (1, len(mean), 1, 1)
        return cls(
            torch.tensor(mean, device=device).view(shape),
            torch.tensor(std, device=device).view(shape),
            input_size,
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255)
        if x.shape[-1] != self.input_size:
            x = F.interpolate(
                x, size=self.input_size, mode="bilinear", antialias=True, align_corners=False
            )
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


def augment(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, batched, on uint8 images."""
    n, _, h, w = images.shape
    device = images.device
    if padding:
        padded = F.pad(images, (padding, padding, padding, padding))
        offsets = torch.randint(0, 2 * padding + 1, (2, n), device=device, generator=generator)
        rows = (offsets[0, :, None] + torch.arange(h, device=device))[:, None, :, None]
        cols = (offsets[1, :, None] + torch.arange(w, device=device))[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[batch, channels, rows, cols]
    flip = torch.rand(n, device=device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only: none on BN parameters, biases, and
    depthwise filters, which have so few parameters that decay only hurts (MobileNet §3.2)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            depthwise = (
                isinstance(module, nn.Conv2d)
                and module.groups > 1
                and module.groups == module.in_channels
            )
            is_weight = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            (decay if is_weight and not depthwise else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: TrainParams) -> torch.optim.SGD:
    """SGD with (Nesterov) momentum over :func:`parameter_groups`, at the peak rate."""
    return torch.optim.SGD(
        parameter_groups(model, config.weight_decay),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to the peak rate, then cosine decay to zero."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def checkpoint_key(config: TrainParams, run: Run, data_hash: str, device: torch.device) -> str:
    """What a checkpoint must have been made for to be resumed: the recipe, the run, the data,
    the code that builds and trains the model, the kind of device and the torch version."""
    from mobilenet_study import models

    sources = [Path(__file__), *sorted(Path(models.__file__).parent.glob("*.py"))]
    code = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()
    return fingerprint(config, run, data_hash, code, device.type, torch.__version__)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, expected: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a corrupt checkpoint is not worth failing the run for
        print(f"ignoring unreadable checkpoint {path}: {err}", file=sys.stderr)
        return None
    if state.get("fingerprint") != expected:
        print(f"ignoring checkpoint {path}: it was made for other params", file=sys.stderr)
        return None
    return state


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
    autocast: Callable[[], contextlib.AbstractContextManager[Any]],
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
    :func:`seed_everything` before building the model).

    ``on_epoch`` sees each finished epoch (after its checkpoint is written), in order; on a
    resumed run it is first called for the epochs done before the interruption.
    """
    device = train_data.images.device
    if len(train_data) < config.batch_size:
        raise p.ParamError(
            "train.batch_size",
            config.batch_size,
            f"must not exceed the number of training images ({len(train_data)})",
        )
    if progress is None:
        progress = sys.stderr.isatty()
    if device.type == "cpu":
        keep_freed_memory()  # CPU steps otherwise map and fault in their buffers anew each time
    # channels_last (NHWC) suits depthwise and 1x1 convs on both oneDNN (CPU: 1.5-1.7x per
    # training step here) and cuDNN; Preprocess hands batches over in the same layout.
    model.to(device=device, memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    optimizer = make_optimizer(model, config)
    steps_per_epoch = len(train_data) // config.batch_size  # drop the last partial batch
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps)
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    forward = torch.compile(model) if config.compile else model

    history: list[EpochRecord] = []
    elapsed = step_seconds = 0.0
    start_epoch = 0
    state = _load_checkpoint(checkpoint, checkpoint_key) if checkpoint else None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            generator.set_state(state["generator"])
            history = [EpochRecord(**record) for record in state["history"]]
            elapsed, step_seconds = state["elapsed"], state["step_seconds"]
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            # The key matched, so this is damage, not other params: the model may be half
            # loaded, and starting over silently would hide it.
            reason = str(err).strip().splitlines()[0][:200]
            raise StudyError(
                f"checkpoint {checkpoint} matches this run but cannot be loaded "
                f"({type(err).__name__}: {reason}); delete it to train from the start"
            ) from err
        start_epoch = len(history)
        print(f"resuming from {checkpoint} after epoch {start_epoch}", file=sys.stderr)
        for record in history:
            if on_epoch:
                on_epoch(record)

    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_data), device=device, generator=generator)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bar = _progress_bar(steps_per_epoch, epoch, config.epochs, progress)
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            x = preprocess(augment(train_data.images[index], config.crop_padding, generator))
            y = train_data.labels[index]
            with _oom_hint(config.batch_size), autocast():
                logits = forward(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            with _oom_hint(config.batch_size):
                loss.backward()
            optimizer.step()
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            schedule.step()
            # Accumulate on the device: no host sync inside the epoch.
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            if bar is not None:
                bar.update(1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - epoch_start
        if bar is not None:
            bar.set_postfix_str(f"{steps_per_epoch * config.batch_size / train_time:,.0f} img/s")
            bar.close()
        test_loss, test_accuracy, _ = evaluate(
            model, test_data, preprocess, config.eval_batch_size, autocast
        )
        seen = steps_per_epoch * config.batch_size
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=loss_sum.item() / seen,
            train_accuracy=correct.item() / seen,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
            lr=lr,
            seconds=time.perf_counter() - epoch_start,
        )
        history.append(record)
        elapsed += record.seconds
        step_seconds += train_time
        if not progress:
            print(
                f"epoch {record.epoch}/{config.epochs}: train loss {record.train_loss:.4f}, "
                f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}, "
                f"{seen / train_time:,.0f} img/s, {record.seconds:.1f} s",
                flush=True,
            )
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "fingerprint": checkpoint_key,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "generator": generator.get_state(),
                    "history": [asdict(r) for r in history],
                    "elapsed": elapsed,
                    "step_seconds": step_seconds,
                },
            )
        if on_epoch:
            on_epoch(record)

    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    # Evaluation is deterministic, so this repeats the last epoch's numbers (also on a resumed
    # run that had nothing left to train) and keeps the predictions for the confusion matrix.
    _, _, predictions = evaluate(model, test_data, preprocess, config.eval_batch_size, autocast)
    return TrainResult(
        model=model,
        history=history,
        train_seconds=elapsed,
        step_seconds=step_seconds,
        images_trained=steps_per_epoch * config.batch_size * config.epochs,
        peak_memory_bytes=peak,
        resumed_from_epoch=start_epoch,
        test_predictions=predictions.cpu(),
    )


def _progress_bar(total: int, epoch: int, epochs: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)


def seed_everything(seed: int, device: torch.device) -> None:
    """Same params and seed on the CPU give identical results."""
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)


def run_metrics(
    run: Run,
    config: TrainParams,
    result: TrainResult,
    *,
    params_count: int,
    macs: int,
    device: torch.device,
) -> dict[str, Any]:
    """The run's metrics file: what it is, how well it did, what it cost."""
    last = result.history[-1]
    return {
        "model": run.model,
        "width": run.width,
        "resolution": run.resolution,
        "seed": run.seed,
        "input_size": run.input_size,
        "epochs": config.epochs,
        "test_accuracy": last.test_accuracy,
        "test_loss": last.test_loss,
        "best_test_accuracy": max(r.test_accuracy for r in result.history),
        "train_loss": last.train_loss,
        "params": params_count,
        "macs": macs,
        "train_seconds": round(result.train_seconds, 3),
        "train_images_per_second": round(result.images_trained / result.step_seconds, 1),
        "train_images": result.images_trained // config.epochs,
        "peak_gpu_memory_bytes": result.peak_memory_bytes,
        "device": device_name(device),
        "torch_version": torch.__version__,
    }


@dataclass(frozen=True)
class RunPaths:
    """Where one run's outputs go (dvc.yaml's train stages declare the same paths).

    The checkpoint lives outside DVC's outputs, so that a rerun of the stage (which deletes
    its outputs first) can still resume from it. The curves folder holds only DVCLive's
    per-epoch TSV files, so that dvc.yaml can plot the whole ``plots/train`` folder.
    """

    model: Path
    metrics: Path
    curves: Path
    predictions: Path
    checkpoint: Path

    @classmethod
    def for_run(cls, name: str, root: str | Path = ".") -> RunPaths:
        root = Path(root)
        return cls(
            model=root / "models" / name / "model.pt",
            metrics=root / "metrics/train" / f"{name}.json",
            curves=root / "plots/train" / name,
            predictions=root / "plots/predictions" / f"{name}.csv",
            checkpoint=root / "checkpoints" / name / "last.pt",
        )


def load_subset(prepared_dir: str | Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A prepared split's images and labels, cut to the class-balanced subset of ``size`` (0 =
    all) that every run uses: the same images in the same order for every run and seed."""
    from mobilenet_study import data

    images, labels = data.load_split(prepared_dir, split)
    keep = stratified_subset(labels, size, SUBSET_SEED)
    return images[keep], labels[keep]


@dataclass
class LoadedData:
    train: DeviceDataset
    test: DeviceDataset
    preprocess: Preprocess
    content_hash: str


def load_dataset(
    prepared_dir: str | Path,
    config: TrainParams,
    run: Run,
    device: torch.device,
) -> LoadedData:
    """The prepared splits (subsets as configured) on ``device``, with their preprocessing."""
    from mobilenet_study import data

    stats = data.read_stats(prepared_dir)
    splits = {}
    for split, size in (("train", config.train_subset), ("test", config.test_subset)):
        images, labels = load_subset(prepared_dir, split, size)
        splits[split] = DeviceDataset.from_arrays(images, labels, device)
    preprocess = Preprocess.create(stats.mean, stats.std, run.input_size, device)
    return LoadedData(splits["train"], splits["test"], preprocess, stats.content_hash)


class CurveLogger:
    """Per-epoch curves through DVCLive, into the run's plots folder (dvc.yaml stays static)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.live: Any = None

    def __enter__(self) -> CurveLogger:
        from dvclive import Live

        self.live = Live(
            dir=str(self.directory),
            dvcyaml=None,
            save_dvc_exp=False,
            report=None,
            monitor_system=False,
        )
        return self

    def log(self, record: EpochRecord) -> None:
        # DVCLive counts steps from 0; the curves' `step` column is the epoch number instead.
        self.live.step = record.epoch
        for name in ("test_accuracy", "test_loss", "train_loss", "train_accuracy", "lr"):
            self.live.log_metric(name, getattr(record, name), plot=True)

    def __exit__(self, *exc: object) -> None:
        self.live.end()
        # DVCLive's summary repeats the last epoch, which metrics/train/<run>.json holds; left
        # here it would be read as one more (malformed) plot of the plots/train folder.
        (self.directory / "metrics.json").unlink(missing_ok=True)


def write_predictions(
    path: str | Path,
    labels: torch.Tensor | np.ndarray,
    predicted: torch.Tensor | np.ndarray,
    classes: tuple[str, ...],
) -> None:
    """Test-set predictions as ``actual,predicted`` class names (DVC's confusion template)."""
    rows = ["actual,predicted"]
    rows += [
        f"{classes[a]},{classes[b]}"
        for a, b in zip(labels.tolist(), predicted.tolist(), strict=True)
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(rows) + "\n")


def save_model(path: str | Path, model: nn.Module, run: Run, preprocess: Preprocess) -> None:
    """Weights plus what is needed to rebuild and feed the model (Grad-CAM reads this)."""
    state = {
        "model": run.model,
        "width": run.width,
        "resolution": run.resolution,
        "seed": run.seed,
        "input_size": run.input_size,
        "mean": preprocess.mean.flatten().tolist(),
        "std": preprocess.std.flatten().tolist(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


@dataclass(frozen=True)
class TrainedModel:
    """A trained run as ``models/<run>/model.pt`` holds it: the network and how to feed it."""

    model: nn.Module
    name: str
    width: float
    resolution: float
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_trained(path: str | Path, num_classes: int = 10) -> TrainedModel:
    """Rebuild a model saved by the training stage (on the CPU, in eval mode)."""
    from mobilenet_study.models import build

    path = Path(path)
    try:
        # weights_only: the file holds plain values and tensors only, so nothing is unpickled.
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build(state["model"], state["width"], num_classes=num_classes)
        model.load_state_dict(state["state_dict"])
        trained = TrainedModel(
            model=model.eval(),
            name=state["model"],
            width=float(state["width"]),
            resolution=float(state["resolution"]),
            input_size=int(state["input_size"]),
            mean=tuple(float(x) for x in state["mean"]),
            std=tuple(float(x) for x in state["std"]),
        )
    except FileNotFoundError:
        raise StudyError(f"{path} does not exist: train the run first (`dvc repro`).") from None
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as err:
        raise StudyError(
            f"{path} is not a model saved by the training stage ({type(err).__name__}: {err}); "
            "retrain the run."
        ) from None
    return trained
