"""Where MobileNets run: a trained run exported to ONNX, run by ONNX Runtime in fp32 and in
statically quantised int8, checked against PyTorch, timed on the CPU, and scored on the test set.

- Export: every BatchNorm folded into the conv before it (as a deployment export does: the
  dynamo exporter's graph keeps BatchNorm behind Cast/Expand nodes that ONNX Runtime cannot
  fuse, which slowed fp32 and left int8 a float BatchNorm per conv), then
  ``torch.onnx.export(..., dynamo=True)``, one input
  ``images`` (N, 3, S, S), already normalised, with a dynamic batch dimension; one output
  ``logits``.
- Check: ONNX Runtime's fp32 logits must match the trained (unfolded) PyTorch model's on the
  test images within
  ``deploy.tolerance`` (largest difference, relative to the largest |logit|, at least 1).
- int8: ``quant_pre_process`` (shape inference and graph clean-up), then ``quantize_static``
  in the QDQ format with per-channel int8 weights and uint8 activations, calibrated (min-max)
  on a seeded, class-balanced sample of training images.
- Latency: milliseconds per image, the median and IQR of ``repeats`` timed calls after
  ``warmup``, at each batch size, with one thread and with every core, for ONNX Runtime fp32 and
  int8 and, side by side in the same process, PyTorch eager fp32.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mobilenet_study import params as p
from mobilenet_study.models import ConvBNAct
from mobilenet_study.params import StudyError
from mobilenet_study.stage import usable_cpus
from mobilenet_study.timing import summarize_times, time_calls, torch_threads
from mobilenet_study.training.artifacts import TrainedModel
from mobilenet_study.training.pipeline import Preprocess

INPUT, OUTPUT = "images", "logits"
MAX_BATCH = 4096


class DeployError(StudyError):
    """A run that cannot be exported, quantised or matched: the message names the run."""


@dataclass(frozen=True)
class DeployParams(p.Section):
    """params.yaml ``deploy:``."""

    SECTION = "deploy"

    tolerance: float = p.setting(low=0.0, low_inclusive=False)
    calibration_images: int = p.setting(low=10)
    seed: int = p.setting(low=0)
    batch_sizes: tuple[int, ...] = p.setting(low=1, high=MAX_BATCH)
    warmup: int = p.setting(low=0)
    repeats: int = p.setting(low=3)


# ONNX and ONNX Runtime are imported where they are used: about a second of import time that
# the aggregate stage (which reads this module's paths and settings) should not pay.


def onnx_versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


# --- export and check ------------------------------------------------------------------------


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with each block's BatchNorm folded into its conv."""
    folded = copy.deepcopy(model).eval()
    for block in folded.modules():
        if isinstance(block, ConvBNAct) and isinstance(block.bn, nn.BatchNorm2d):
            block.conv = fuse_conv_bn_eval(block.conv, block.bn)
            block.bn = nn.Identity()
    return folded


def export_onnx(model: nn.Module, input_size: int, path: Path, run: str) -> None:
    """Write ``model`` (eval mode, CPU) as ONNX with a dynamic batch dimension."""
    model = model.eval().cpu()
    example = torch.zeros(2, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    try:
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: batch},),
            # No onnxscript optimisation pass: ONNX Runtime optimises the graph when it loads
            # it. One self-contained file (the weights inside): the quantiser copies the model
            # elsewhere, where a separate weights file would not follow it.
            optimize=False,
            external_data=False,
            verbose=False,
        )
    except Exception as err:  # the exporter raises many kinds; all mean the same to the user
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise DeployError(
            f"{run}: torch.onnx.export failed ({type(err).__name__}: {reason}); nothing was "
            "written for this run"
        ) from err
    if not path.is_file():
        raise DeployError(f"{run}: torch.onnx.export wrote no file at {path}")


def session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads, all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def batches(inputs: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(inputs), size):
        yield inputs[start : start + size]


def ort_logits(onnx_session: Any, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.concatenate(
        [onnx_session.run([OUTPUT], {INPUT: batch})[0] for batch in batches(inputs, batch_size)]
    )


def torch_logits(model: nn.Module, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model = model.eval()
    with torch.inference_mode():
        return np.concatenate(
            [model(torch.from_numpy(batch)).numpy() for batch in batches(inputs, batch_size)]
        )


def preprocess(trained: TrainedModel, images: np.ndarray) -> np.ndarray:
    """uint8 NHWC images -> the model's normalised float32 NCHW input (the training pipeline's
    preprocessing, without augmentation), contiguous for ONNX Runtime."""
    prep = Preprocess.create(trained.mean, trained.std, trained.input_size, torch.device("cpu"))
    out = []
    for batch in batches(images, 1000):
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
        out.append(prep(tensor).contiguous().numpy())
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def check_match(reference: np.ndarray, candidate: np.ndarray, tolerance: float, run: str) -> float:
    """The largest logit difference, relative to the logits' scale (the largest |logit|, at
    least 1: float32 rounding grows with the values); a DeployError above ``tolerance``."""
    scale = max(1.0, float(np.max(np.abs(reference))))
    difference = float(np.max(np.abs(reference.astype(np.float64) - candidate))) / scale
    if not np.isfinite(difference) or difference > tolerance:
        raise DeployError(
            f"{run}: ONNX Runtime's logits differ from PyTorch's by up to {difference:.3g} of "
            f"their scale ({scale:.3g}) on the test images, more than deploy.tolerance = "
            f"{tolerance:g}: the export is not the trained model; nothing was written for this "
            "run"
        )
    return difference


# --- int8 ----------------------------------------------------------------------------------


def quantize_int8(fp32: Path, int8: Path, calibration: np.ndarray, run: str) -> None:
    """Static int8 quantisation (QDQ, per-channel int8 weights, uint8 activations), ranges from
    ``calibration`` (preprocessed images) by min-max."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feed = iter(batches(calibration, 32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.feed, None)
            return None if batch is None else {INPUT: batch}

    prepared = int8.with_name(int8.stem + ".pre.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    except Exception as err:
        raise DeployError(
            f"{run}: int8 quantisation failed ({type(err).__name__}: {err}); nothing was "
            "written for this run"
        ) from err
    finally:
        prepared.unlink(missing_ok=True)


# --- latency -------------------------------------------------------------------------------


def _eager(model: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        model(x)


def latency_rows(
    models: Mapping[str, Path],
    torch_model: nn.Module,
    input_size: int,
    config: DeployParams,
) -> list[dict[str, Any]]:
    """ms per image (median, IQR) for every engine, precision, thread count and batch size,
    measured one after another on the same random input."""
    rows = []
    generator = np.random.default_rng(config.seed)
    torch_model = torch_model.eval()
    for threads in sorted({1, usable_cpus()}):
        with torch_threads(threads):
            sessions = {precision: session(path, threads) for precision, path in models.items()}
            for batch in config.batch_sizes:
                x = generator.standard_normal((batch, 3, input_size, input_size), np.float32)
                calls: dict[tuple[str, str], Any] = {
                    ("onnxruntime", precision): partial(s.run, [OUTPUT], {INPUT: x})
                    for precision, s in sessions.items()
                }
                calls["torch", "fp32"] = partial(_eager, torch_model, torch.from_numpy(x))
                for (engine, precision), call in calls.items():
                    latency = summarize_times(
                        time_calls(call, config.warmup, config.repeats), batch
                    )
                    rows.append(
                        {
                            "engine": engine,
                            "precision": precision,
                            "threads": threads,
                            "batch_size": batch,
                            "ms_per_image_median": latency.median_ms_per_image,
                            "ms_per_image_iqr": latency.iqr_ms_per_image,
                        }
                    )
    return rows


# --- one run, end to end ---------------------------------------------------------------------


@dataclass
class DeployResult:
    """What the stage writes for a run, besides the two ONNX files."""

    run: str
    max_logit_difference: float  # relative to the largest |logit| (at least 1)
    test_images: int
    accuracy: dict[str, float]  # "torch", "fp32" (ORT), "int8" (ORT)
    int8_predictions: np.ndarray
    latency: list[dict[str, Any]]

    def summary(self, config: DeployParams) -> dict[str, Any]:
        return {
            "run": self.run,
            "tolerance": config.tolerance,
            "max_logit_difference": self.max_logit_difference,
            "test_images": self.test_images,
            "accuracy": self.accuracy,
            "calibration_images": config.calibration_images,
            "versions": {"torch": torch.__version__, **onnx_versions()},
            "all_threads": usable_cpus(),
            "latency": self.latency,
        }


def deploy_run(
    run: str,
    trained: TrainedModel,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    calibration_images: np.ndarray,
    config: DeployParams,
    fp32_path: Path,
    int8_path: Path,
) -> DeployResult:
    """Export, check, quantise, time and score one trained run; the ONNX files go to the given
    paths (temporary ones: the caller publishes them once everything has passed)."""
    export_onnx(fold_batchnorm(trained.model), trained.input_size, fp32_path, run)
    inputs = preprocess(trained, test_images)
    reference = torch_logits(trained.model, inputs)
    fp32 = ort_logits(session(fp32_path, usable_cpus()), inputs)
    difference = check_match(reference, fp32, config.tolerance, run)
    quantize_int8(fp32_path, int8_path, preprocess(trained, calibration_images), run)
    int8 = ort_logits(session(int8_path, usable_cpus()), inputs)
    accuracy = {
        name: float((logits.argmax(1) == test_labels).mean())
        for name, logits in (("torch", reference), ("fp32", fp32), ("int8", int8))
    }
    latency = latency_rows(
        {"fp32": fp32_path, "int8": int8_path}, trained.model, trained.input_size, config
    )
    return DeployResult(run, difference, len(test_labels), accuracy, int8.argmax(1), latency)
