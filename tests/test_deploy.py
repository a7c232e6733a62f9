"""Deployment: ONNX export checked against PyTorch, int8 static quantisation, latency rows, and
what a run that cannot be exported or matched gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from mobilenet_study import deploy
from mobilenet_study.models import build
from mobilenet_study.params import ParamError, UnknownKeyError
from mobilenet_study.stage import usable_cpus
from mobilenet_study.training.artifacts import TrainedModel

SETTINGS = {
    "tolerance": 1e-3,
    "calibration_images": 20,
    "seed": 0,
    "batch_sizes": [1, 4],
    "warmup": 0,
    "repeats": 3,
}


def config(**changes: object) -> deploy.DeployParams:
    return deploy.DeployParams.from_params({"deploy": {**SETTINGS, **changes}})


def trained(model: nn.Module, input_size: int = 16) -> TrainedModel:
    torch.manual_seed(0)
    # Non-trivial BatchNorm statistics, so the check compares real numbers.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return TrainedModel(
        model.eval(), "mobilenet_v1", 0.25, 0.5, input_size, (0.5, 0.45, 0.4), (0.25, 0.24, 0.26)
    )


def images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8), np.arange(count) % 10


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tolerance", 0, r"`deploy.tolerance` is 0"),
        ("calibration_images", 5, r"`deploy.calibration_images` is 5"),
        ("batch_sizes", [1, 1], r"`deploy.batch_sizes` is \[1, 1\]; expected distinct"),
        ("batch_sizes", [0], r"`deploy.batch_sizes\[0\]` is 0"),
        ("repeats", 2, r"`deploy.repeats` is 2"),
    ],
)
def test_bad_settings_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        config(**{key: value})


def test_a_misspelt_setting_is_refused() -> None:
    with pytest.raises(UnknownKeyError, match=r"did you mean `deploy.repeats`\?"):
        deploy.DeployParams.from_params({"deploy": {**SETTINGS, "repeat": 3}})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[deploy.DeployResult, Path]:
    folder = tmp_path_factory.mktemp("deploy")
    model = trained(build("mobilenet_v1", 0.25))
    test, labels = images(48, seed=1)
    calibration, _ = images(20, seed=2)
    result = deploy.deploy_run(
        "mobilenet_v1-0.25-0.5-0",
        model,
        test,
        labels,
        calibration,
        config(),
        folder / "model.onnx",
        folder / "model.int8.onnx",
    )
    return result, folder


def test_export_matches_pytorch_and_int8_is_quantised(
    deployed: tuple[deploy.DeployResult, Path],
) -> None:
    result, folder = deployed
    assert result.max_logit_difference < 1e-4
    assert result.test_images == 48 and result.int8_predictions.shape == (48,)
    assert set(result.accuracy) == {"torch", "fp32", "int8"}
    # The fp32 export predicts what PyTorch predicts (logits within 1e-3).
    assert result.accuracy["fp32"] == result.accuracy["torch"]
    fp32 = onnx.load(folder / "model.onnx")
    int8 = onnx.load(folder / "model.int8.onnx")
    fp32_ops = {node.op_type for node in fp32.graph.node}
    int8_ops = {node.op_type for node in int8.graph.node}
    assert "Conv" in fp32_ops and "QuantizeLinear" not in fp32_ops
    # BatchNorm folded into the convs: nothing left for the int8 graph to run in float.
    assert "BatchNormalization" not in fp32_ops | int8_ops
    assert {"QuantizeLinear", "DequantizeLinear"} <= int8_ops
    # Per-channel weights: the conv weights' scales are vectors, one per output channel.
    initializers = {init.name: init for init in int8.graph.initializer}
    scales = [
        initializers[node.input[1]]
        for node in int8.graph.node
        if node.op_type == "DequantizeLinear" and node.input[1] in initializers
    ]
    assert any(len(scale.dims) == 1 and scale.dims[0] > 1 for scale in scales)
    # A dynamic batch: the same file serves batch 1 and batch 4.
    assert fp32.graph.input[0].type.tensor_type.shape.dim[0].dim_param


def test_latency_rows_cover_every_setting(deployed: tuple[deploy.DeployResult, Path]) -> None:
    result, _ = deployed
    settings = {
        (r["engine"], r["precision"], r["threads"], r["batch_size"]) for r in result.latency
    }
    threads = sorted({1, usable_cpus()})
    kinds = (("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("torch", "fp32"))
    assert settings == {
        (engine, precision, t, b) for engine, precision in kinds for t in threads for b in (1, 4)
    }
    assert all(r["ms_per_image_median"] > 0 and r["ms_per_image_iqr"] >= 0 for r in result.latency)
    summary = result.summary(config())
    assert summary["versions"]["onnxruntime"] and summary["tolerance"] == 1e-3


def test_a_mismatch_beyond_the_tolerance_names_the_run(tmp_path: Path) -> None:
    model = trained(build("mobilenet_v1", 0.25))
    test, labels = images(8, seed=1)
    with pytest.raises(deploy.DeployError, match=r"^mobilenet_v1-x: ONNX Runtime's logits differ"):
        deploy.deploy_run(
            "mobilenet_v1-x",
            model,
            test,
            labels,
            test,
            config(tolerance=1e-12, calibration_images=10),
            tmp_path / "a.onnx",
            tmp_path / "b.onnx",
        )
    assert not (tmp_path / "b.onnx").exists()  # nothing quantised after a failed check


class DataDependent(nn.Module):
    """Control flow on a value: torch.export cannot trace it into one graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return x.flatten(1)[:, :10]
        return -x.flatten(1)[:, :10]


def test_a_model_that_fails_to_export_names_the_run(tmp_path: Path) -> None:
    with pytest.raises(deploy.DeployError, match=r"^odd-run: torch.onnx.export failed"):
        deploy.export_onnx(DataDependent(), 8, tmp_path / "odd.onnx", "odd-run")


def test_check_match_by_hand() -> None:
    reference = np.array([[1.0, -20.0], [3.0, 4.0]])
    # Relative to the largest |logit| (20): 0.01 absolute is 5e-4.
    assert deploy.check_match(reference, reference + 0.01, 1e-3, "r") == pytest.approx(5e-4)
    with pytest.raises(deploy.DeployError, match=r"by up to 0\.005 of their scale \(20\)"):
        deploy.check_match(reference, reference + 0.1, 1e-3, "r")
    small = np.full((2, 2), 0.1)  # the scale is at least 1
    assert deploy.check_match(small, small + 1e-4, 1e-3, "r") == pytest.approx(1e-4)
    with pytest.raises(deploy.DeployError):
        deploy.check_match(reference, reference * np.nan, 1e-3, "r")


@pytest.mark.parametrize("name", ["mobilenet_v1", "baseline", "mobilenet_v2"])
def test_folding_batchnorm_keeps_the_outputs(name: str) -> None:
    model = trained(build(name, 0.25)).model
    folded = deploy.fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is kept
    x = torch.randn(4, 3, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


def test_mobilenet_v2_exports_and_matches(tmp_path: Path) -> None:
    """V2's inverted residuals (additions, ReLU6, linear bottlenecks) through the exporter."""
    model = trained(build("mobilenet_v2", 0.25))
    test, _ = images(16, seed=3)
    folded = deploy.fold_batchnorm(model.model)
    deploy.export_onnx(folded, 16, tmp_path / "v2.onnx", "mobilenet_v2-0.25-0.5-0")
    inputs = deploy.preprocess(model, test)
    ort = deploy.ort_logits(deploy.session(tmp_path / "v2.onnx", 1), inputs)
    reference = deploy.torch_logits(model.model, inputs)
    assert deploy.check_match(reference, ort, 1e-3, "v2") < 1e-4
