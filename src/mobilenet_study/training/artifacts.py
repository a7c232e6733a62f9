"""What a training run writes — model, metrics, per-epoch curves, test predictions — and how a
trained model is read back (the Grad-CAM, deploy and theory stages)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from dvclive import Live
from torch import nn

from mobilenet_study.files import atomic_path
from mobilenet_study.grid import Run
from mobilenet_study.models import build
from mobilenet_study.params import StudyError
from mobilenet_study.training.pipeline import Preprocess
from mobilenet_study.training.recipe import TrainParams, device_name, recipe_fingerprint

if TYPE_CHECKING:  # the type only: reading a model back needs no training loop
    from mobilenet_study.training.loop import EpochRecord, TrainResult


def run_metrics(
    run: Run,
    config: TrainParams,
    result: TrainResult,
    *,
    params_count: int,
    macs: int,
    device: torch.device,
    evaluated_on: str = "test",
) -> dict[str, Any]:
    """The run's metrics file: what it is, how well it did (on the test split, or the
    validation split while a recipe is chosen), what it cost."""
    last = result.history[-1]
    return {
        "model": run.model,
        "width": run.width,
        "resolution": run.resolution,
        "seed": run.seed,
        "input_size": run.input_size,
        "epochs": config.epochs,
        "evaluated_on": evaluated_on,
        "recipe": recipe_fingerprint(config),
        "precision": result.precision,
        "tta": config.tta,
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


class CurveLogger:
    """Per-epoch curves through DVCLive, into the run's plots folder (dvc.yaml stays static)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.live: Live | None = None

    def __enter__(self) -> CurveLogger:
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
