"""The long-running benchmarks end to end at toy sizes, so that a run of hours does not fail on
a typo at its end: the recipe ablation, the convergence curve, the grid-epoch comparison, the
theory budget and the prepared GPU check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT
from .test_train import save_prepared_tiny, synthetic_split


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    folder = tmp_path / "prepared"
    save_prepared_tiny(folder, *synthetic_split(400, 3))
    return folder


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_recipe_ablation_runs_and_resumes(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablation.jsonl"
    args = [
        "benchmarks/recipe_ablation.py", "--data", str(prepared), "--width", "0.25",
        "--resolution", "0.5", "--epochs", "1", "--validation", "50", "--out", str(out),
        "--base", '{"batch_size": 50, "lr": 0.05}', "--variants", "base,lr_x2,alt_flip",
    ]  # fmt: skip
    printed = _run(*args)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["base", "lr_x2", "alt_flip"]
    assert rows[0]["evaluated_on"] == "validation (50 images)"
    assert all(0 <= r[k] <= 1 for r in rows for k in ("raw", "raw_tta", "ema", "ema_tta"))
    assert "| lr_x2 | lr_scale=2.0 |" in printed
    _run(*args)  # every row is there: nothing is trained again
    assert len(out.read_text().splitlines()) == 3


def test_convergence_runs(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "convergence.jsonl"
    printed = _run(
        "benchmarks/convergence.py", "--data", str(prepared), "--out", str(out),
        "--work", str(tmp_path / "work"), "--points",
        "mobilenet_v1-0.25-0.5-0@1,mobilenet_v1-0.25-0.5-0@2", "--set", "train.device=cpu",
        "--set", "train.batch_size=50", "--set", "train.warmup_epochs=0",
        "--set", "train.compile=false",
    )  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["point"], len(r["curve"])) for r in rows] == [
        ("mobilenet_v1-0.25-0.5-0@1", 1), ("mobilenet_v1-0.25-0.5-0@2", 2),
    ]  # fmt: skip
    assert rows[0]["test_images"] == 100 and "| mobilenet_v1-0.25-0.5-0 | 2 |" in printed


def test_grid_epoch_compares_two_commits(prepared: Path) -> None:
    printed = _run(
        "benchmarks/grid_epoch.py", "--old", "HEAD", "--data", str(prepared), "--steps", "2",
        "--runs", "mobilenet_v1-0.25-0.5-0",
    )  # fmt: skip
    assert "grid epoch (1 runs): old HEAD" in printed and "ratio" in printed


def test_theory_budget_runs(prepared: Path, tmp_path: Path) -> None:
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["theory"]["input_size"] = 8
    params["theory"]["degradation"].update(
        depths=[8, 14], widths=[4, 4, 8], batch_size=8, log_every=2
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "budget.json"
    _run(
        "benchmarks/theory_budget.py", "--data", str(prepared), "--steps", "6",
        "--params", str(tmp_path / "params.yaml"), "--out", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["steps_measured"] == 6 and result["verdicts"]["step"] == [2, 4, 6]
    assert result["settings"] == {
        "seed": 0, "input_size": 8, "depths": [8, 14], "widths": [4, 4, 8],
        "batch_size": 8, "lr": params["theory"]["degradation"]["lr"], "log_every": 2,
    }  # fmt: skip
    assert set(result) >= {"first_ahead_step", "ahead_from_step", "cpu", "seconds"}


def test_gpu_check_runs_at_toy_size_on_the_cpu(prepared: Path, tmp_path: Path) -> None:
    """The GPU check's first run on a GPU must not fail on a typo: the subset it travels with,
    then every section, on the CPU."""
    subset = tmp_path / "subset"
    _run("benchmarks/gpu_check.py", "--data", str(prepared), "--out", str(subset),
         "--make-subset", "200,100")  # fmt: skip
    assert json.loads((subset / "summary.json").read_text())["images"] == {
        "train": 200,
        "test": 100,
    }
    printed = _run(
        "benchmarks/gpu_check.py", "--data", str(subset), "--out", str(tmp_path), "--toy",
        "--steps", "2", "--epochs", "1", "--set", "train.device=cpu",
        "--set", "train.batch_size=50", "--set", "train.eval_batch_size=100",
    )  # fmt: skip
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    sizes = [(r["model"], r["width"]) for r in report["throughput"]]
    assert sizes == [("mobilenet_v1", 0.25), ("baseline", 0.25)]
    assert all(r["images_per_second"] > 0 and r["batch_size"] == 50 for r in report["throughput"])
    pair = report["precision"]
    assert {"fp32", "bf16", "mcnemar_p", "bf16_minus_fp32_points"} <= set(pair)
    grid = report["grid"]
    assert grid["label"].startswith("extrapolated") and grid["runs"] > 0
    low, high = grid["one_after_another_s"]
    assert 0 < low <= high and grid["4_workers_s"][1] == high
    assert "# GPU check, cpu" in printed and (tmp_path / "gpu_check.md").exists()
