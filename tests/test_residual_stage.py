"""The `residual` stage: the assignment's numbers, its figures, DVC behaviour and bad params."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mobilenet_study import residual_exercise as ex
from mobilenet_study.params import ParamError, load_params

from .conftest import REPO_ROOT, PipelineRepo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(REPO_ROOT / "params.yaml")


def test_residual_steps_match_torch(params: dict) -> None:
    config = ex.ResidualParams.from_params(params)
    steps = ex.run_residual(config)
    x = torch.tensor(params["residual"]["input"], dtype=torch.float64)[None, None]
    w = torch.tensor(params["residual"]["kernel"], dtype=torch.float64)[None, None]
    conv = F.conv2d(x, w, padding=1)
    skip = F.relu(F.relu(conv) + x)
    pooled = F.max_pool2d(skip, 2, 2)
    np.testing.assert_allclose(steps["conv"], conv[0, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(steps["skip_relu"], skip[0, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(steps["max_pool"], pooled[0, 0].numpy(), atol=1e-12)
    # Worked by hand: conv at the top-left corner sees [[0,0,0],[0,100,150],[0,80,120]], so
    # 0.4·100 + 0.1·150 − 0.1·80 + 0.1·120 = 59; the pooled maxima are 242, 380, 117, 324.
    assert steps["conv"][0, 0] == pytest.approx(59.0)
    np.testing.assert_allclose(steps["max_pool"], [[242, 380], [117, 324]])
    assert steps["global_avg_pool"][0, 0] == pytest.approx((242 + 380 + 117 + 324) / 4)


def test_conv_grad_matches_autograd_and_hand_values(params: dict) -> None:
    config = ex.ConvGradParams.from_params(params)
    result = ex.run_conv_grad(config)
    x = torch.tensor(params["conv_grad"]["input"], dtype=torch.float64)[None, None]
    w = torch.tensor(params["conv_grad"]["kernel"], dtype=torch.float64)[None, None]
    x.requires_grad_()
    w.requires_grad_()
    y = F.conv2d(x, w)
    y.backward(torch.tensor(params["conv_grad"]["upstream_grad"], dtype=torch.float64)[None, None])
    np.testing.assert_allclose(result.y, y[0, 0].detach().numpy())
    np.testing.assert_allclose(result.dw, w.grad[0, 0].numpy())
    np.testing.assert_allclose(result.dx, x.grad[0, 0].numpy())
    # By hand: dW[0,0] = X[0,0]·1 + X[0,1]·(−1) + X[1,0]·(−1) + X[1,1]·1 = 1 − 2 − 2 + 1.
    assert result.dw[0, 0] == -2
    # dX[0,1] gets dY[0,0]·W[0,1] + dY[0,1]·W[0,0] = −1 − 1.
    assert result.dx[0, 1] == -2
    assert result.max_abs_error_vs_numeric < 1e-6


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("residual.input", [[1, 2, 3], [4, 5]], "`residual.input`.*rectangular"),
        (
            "residual.kernel",
            [[0.1, "a", 0.1], [0, 0, 0], [0, 0, 0]],
            r"`residual.kernel\[0\]\[1\]`",
        ),
        ("residual.kernel", [[1, 1], [1, 1]], "`residual.kernel`.*skip connection"),
        ("residual.stride", 0, "`residual.stride`"),
        ("conv_grad.kernel", [[1] * 5] * 5, "`conv_grad.kernel`.*must fit"),
        ("conv_grad.upstream_grad", [[1, 2, 3]], "`conv_grad.upstream_grad`.*2x2"),
        ("conv_grad.input", [], "`conv_grad.input`.*non-empty matrix"),
    ],
)
def test_malformed_params_name_the_key(params: dict, key: str, value: object, message: str) -> None:
    section, leaf = key.split(".")
    bad = {**params, section: {**params[section], leaf: value}}
    with pytest.raises(ParamError, match=message):
        ex.ResidualParams.from_params(bad)
        ex.ConvGradParams.from_params(bad)


@pytest.mark.slow
def test_dvc_repro_residual(pipeline_repo: PipelineRepo) -> None:
    first = pipeline_repo.dvc("repro", "residual")
    assert "Running stage 'residual'" in first.stdout

    metrics = json.loads((pipeline_repo.path / "metrics/residual.json").read_text())
    assert metrics["output"] == pytest.approx(265.75)
    assert list(metrics["steps"]) == list(ex.RESIDUAL_STEPS)
    assert metrics["conv_grad"]["dW"] == [[-2, 0, 2], [0, 3, -2], [2, -1, 0]]
    assert metrics["conv_grad"]["max_abs_error_vs_numeric"] < 1e-6
    for figure in ("residual_block.png", "conv_grad.png"):
        data = (pipeline_repo.path / "plots/residual" / figure).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000

    second = pipeline_repo.dvc("repro", "residual")
    assert "Running stage" not in second.stdout
    assert "didn't change" in second.stdout or "up to date" in second.stdout

    shown = pipeline_repo.dvc("metrics", "show", "--json").stdout
    assert "265.75" in shown


@pytest.mark.slow
def test_dvc_repro_fails_cleanly_on_malformed_params(pipeline_repo: PipelineRepo) -> None:
    pipeline_repo.set_params({"residual.input": [[1, 2, 3], [4, 5, 6], [7, 8]]})
    result = pipeline_repo.dvc("repro", "residual", check=False)
    assert result.returncode != 0
    assert "`residual.input`" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert not (pipeline_repo.path / "metrics/residual.json").exists()
    assert not list((pipeline_repo.path / "plots").glob("residual*/*"))


def test_stage_script_writes_nothing_on_bad_params(tmp_path: Path, params: dict) -> None:
    import yaml

    bad = {**params, "conv_grad": {**params["conv_grad"], "kernel": [[1, "x", 0]]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "stages/residual.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: params.yaml: `conv_grad.kernel[0][1]` is 'x'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
