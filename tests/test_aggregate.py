"""The aggregate stage: the study table, its metrics, the report's sentences, and the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mobilenet_study.cost import metric_key
from mobilenet_study.data import DataSummary
from mobilenet_study.grid import RunPoint
from mobilenet_study.params import StudyError
from mobilenet_study.study import report, table

from .conftest import PipelineRepo
from .test_train_stage import TINY_GRID, write_image_folder

PARAMS = {
    "grid": {
        "sweep": {"models": ["mobilenet_v1"], "widths": [1.0, 0.5], "resolutions": [1.0]},
        "reference": {"models": ["baseline"], "widths": [1.0], "resolutions": [1.0]},
    }
}


def run_inputs(point: RunPoint, accuracy: float, params: int, macs: int) -> table.RunInputs:
    metrics = {
        "model": point.model,
        "width": point.width,
        "resolution": point.resolution,
        "epochs": 2,
        "test_accuracy": accuracy,
        "best_test_accuracy": accuracy,
        "test_loss": 1.5,
        "params": params,
        "macs": macs,
        "train_seconds": 10.0,
        "train_images_per_second": 100.0,
        "train_images": 1000,
        "device": "cpu",
    }
    curves = pd.DataFrame(
        {"epoch": [1, 2], "test_accuracy": [0.1, accuracy], "test_loss": [2.0, 1.5]}
    ).assign(train_loss=[2.1, 1.6])
    return table.RunInputs(point, metrics, curves, Path("unused.csv"))


def cost_rows(runs: list[table.RunInputs], device: str = "cpu") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": r.point.model,
                "width": r.point.width,
                "resolution": r.point.resolution,
                "macs_analytic": r.metrics["macs"],
                "params_norm": 1.0,
                "macs_norm": 1.0,
                "params_theory": 1.0,
                "macs_theory": 1.0,
                "latency_ms_per_image_median": r.metrics["macs"] / 1e6,
                "latency_ms_per_image_iqr": 0.01,
                "device": device,
            }
            for r in runs
        ]
    )


@pytest.fixture
def runs() -> list[table.RunInputs]:
    # MobileNet at α 1 and 0.5, the baseline (standard convs) at α 1: made-up round numbers.
    return [
        run_inputs(RunPoint("mobilenet_v1", 1.0, 1.0), 0.800, 3_200_000, 36_000_000),
        run_inputs(RunPoint("mobilenet_v1", 0.5, 1.0), 0.779, 1_000_000, 10_000_000),
        run_inputs(RunPoint("baseline", 1.0, 1.0), 0.850, 22_400_000, 360_000_000),
    ]


@pytest.fixture
def study(runs: list[table.RunInputs]) -> pd.DataFrame:
    return table.study_table(runs, cost_rows(runs))


def test_pareto_frontier_keeps_the_undominated_points() -> None:
    costs = [1, 2, 3, 4, 2]
    values = [0.1, 0.3, 0.2, 0.5, 0.3]
    # (3, 0.2) is beaten by (2, 0.3); the two equal points (2, 0.3) do not dominate each other.
    assert table.pareto_frontier(costs, values) == [True, True, False, True, True]


def test_study_table_joins_runs_and_cost(study: pd.DataFrame) -> None:
    assert list(study.columns) == list(table.COLUMNS)
    assert study["run"].tolist() == [
        "mobilenet_v1-1.0-1.0",
        "mobilenet_v1-0.5-1.0",
        "baseline-1.0-1.0",
    ]
    assert study["latency_ms_per_image_cpu"].tolist() == [36.0, 10.0, 360.0]
    assert study["latency_ms_per_image_gpu"].isna().all()
    # The α 1 MobileNet costs more than α 0.5 and is barely more accurate: still undominated.
    assert study["pareto_frontier"].tolist() == [True, True, True]


def test_gpu_latency_goes_to_its_own_column(runs: list[table.RunInputs]) -> None:
    gpu = table.study_table(runs, cost_rows(runs, device="cuda"))
    assert gpu["latency_ms_per_image_cpu"].isna().all()
    assert gpu["latency_ms_per_image_gpu"].tolist() == [36.0, 10.0, 360.0]
    entry = table.study_metrics(gpu)["baseline"]["w1"]["r1"]
    assert "latency_ms_per_image_cpu" not in entry and entry["latency_ms_per_image_gpu"] == 360.0


def test_metrics_are_keyed_like_the_cost_metrics(study: pd.DataFrame) -> None:
    metrics = table.study_metrics(study)
    assert metric_key("w", 0.5) == "w0_5"
    entry = metrics["mobilenet_v1"]["w0_5"]["r1"]
    assert entry["test_accuracy"] == 0.779 and entry["macs_measured"] == 10_000_000
    assert entry["device"] == "cpu" and "latency_ms_per_image_gpu" not in entry
    json.dumps(metrics, allow_nan=False)  # DVC's reader rejects NaN


def test_width_sentence_computes_ratios(study: pd.DataFrame) -> None:
    (change,) = report.multiplier_changes(study, "width")
    assert change.macs_ratio == pytest.approx(3.6)
    assert change.params_ratio == pytest.approx(3.2)
    assert change.accuracy_points == pytest.approx(-2.1)
    sentence = report.change_sentence(change)
    assert "α 1 → 0.5 cuts MACs 3.6× (α² predicts 4.0×) and parameters 3.2×" in sentence
    assert "for −2.1 points of accuracy (80.0% → 77.9%)" in sentence


def test_one_multiplier_value_is_said_not_invented(study: pd.DataFrame) -> None:
    assert report.multiplier_changes(study, "resolution") == []
    assert report._changes(study, "resolution") == [
        "Only one ρ was trained per model in this run, so its effect is not measured."
    ]


def test_baseline_comparison_sits_beside_table_4(study: pd.DataFrame) -> None:
    ours, paper = report.baseline_sentences(study)
    assert "10.0× fewer MACs and 7.0× fewer parameters" in ours
    assert "for −5.0 points of accuracy (85.0% → 80.0%)" in ours
    assert "8.6× fewer MACs and 7.0× fewer parameters for −1.1 points" in paper
    lonely = study[study["model"] != "baseline"]
    assert "cannot be made here" in report.baseline_sentences(lonely)[0]


def test_pareto_and_confusion_sentences(study: pd.DataFrame) -> None:
    assert report.pareto_sentence(study).endswith("0 of 3 runs lie below it.")
    counts = table.confusion_counts(
        pd.DataFrame({"actual": ["cat", "cat", "dog"], "predicted": ["dog", "cat", "dog"]}),
        ["cat", "dog"],
    )
    best = table.best_mobilenet(study)
    assert best["run"] == "mobilenet_v1-1.0-1.0"  # the baseline is more accurate, not a MobileNet
    first, second = report.confusion_sentences(best, counts)
    assert "80.0% on 3 test images" in first
    assert "best class is dog (recall 100.0%)" in second
    assert "cat taken for dog (1 time)" in second


def test_data_source_is_named() -> None:
    jpeg = DataSummary("mirror", "image_folder", "jpeg", True, (0.5,) * 3, (0.2,) * 3, "x")
    assert report.data_source_text(jpeg).startswith("JPEG mirror")
    official = DataSummary("url", "official_archive", "png", False, (0.5,) * 3, (0.2,) * 3, "x")
    assert report.data_source_text(official) == "official archive"
    mixed = DataSummary("m", "image_folder", "jpeg+png", True, (0.5,) * 3, (0.2,) * 3, "x")
    assert report.data_source_text(mixed).startswith("JPEG mirror")
    png = DataSummary("m", "image_folder", "png", False, (0.5,) * 3, (0.2,) * 3, "x")
    assert report.data_source_text(png) == "png image-folder mirror (lossless)"


def test_feature_sides_round_odd_sides_up() -> None:
    assert report.feature_sides("mobilenet_v1", 20) == [20, 10, 5, 3, 2]


def test_missing_run_names_the_run_and_its_stage(tmp_path: Path) -> None:
    sweep = RunPoint("mobilenet_v1", 0.5, 1.0)
    reference = RunPoint("baseline", 1.0, 1.0, "reference")
    with pytest.raises(StudyError, match=r"mobilenet_v1-0\.5-1\.0.*dvc repro train@mobilenet_v1"):
        table.read_runs([sweep], tmp_path)
    with pytest.raises(StudyError, match=r"dvc repro train_reference@baseline-1\.0-1\.0"):
        table.read_runs([reference], tmp_path)


@pytest.mark.slow
def test_dvc_repro_aggregate_builds_the_study(pipeline_repo: PipelineRepo, tmp_path: Path) -> None:
    repo = pipeline_repo
    folder = write_image_folder(tmp_path / "mirror", {"train": 20, "test": 10})
    repo.set_params({**TINY_GRID, "data.source": str(folder), "cost.warmup": 0, "cost.repeats": 3})
    repo.commit("tiny configuration")
    repo.dvc("repro", "aggregate")

    study = pd.read_csv(repo.path / "plots/study/study.csv")
    metrics = json.loads((repo.path / "metrics/study.json").read_text())
    runs = ["mobilenet_v1-0.25-0.5", "mobilenet_v1-0.25-1.0", "baseline-0.125-0.5"]
    assert study["run"].tolist() == runs
    for row in study.to_dict("records"):
        trained = json.loads((repo.path / f"metrics/train/{row['run']}.json").read_text())
        entry = metrics[row["model"]][metric_key("w", row["width"])][
            metric_key("r", row["resolution"])
        ]
        assert entry["test_accuracy"] == round(trained["test_accuracy"], 4)
        assert entry["macs_measured"] == trained["macs"] == row["macs_measured"]
        assert entry["params"] == trained["params"] and entry["device"] == "cpu"
    curves = pd.read_csv(repo.path / "plots/study/curves.csv")
    assert len(curves) == len(runs) and set(curves["run"]) == set(runs)  # one epoch each

    best = study[study["model"] == "mobilenet_v1"].sort_values("test_accuracy").iloc[-1]["run"]
    confusion = (repo.path / "plots/study/confusion.csv").read_text()
    assert confusion == (repo.path / f"plots/predictions/{best}.csv").read_text()

    text = (repo.path / "reports/study.md").read_text()
    assert "png image-folder mirror" in text and "**Training device:** cpu" in text
    for name in ("accuracy_vs_macs", "curves", "confusion", "scaling_width"):
        assert f"(../plots/study/{name}.png)" in text
        assert (repo.path / f"plots/study/{name}.png").stat().st_size > 1000
    assert "Only one α was trained per model" in text  # one α in the tiny grid

    shown = json.loads(repo.dvc("plots", "show", "--json").stdout)
    study_plots = [k for k in shown["data"] if k.startswith(("study_", "plots/study/"))]
    assert len(study_plots) == 16
    assert not [e for e in shown.get("errors", []) if "study" in e.get("name", "")]

    # A run missing from metrics/train: a clear error naming it and its stage.
    (repo.path / "metrics/train/baseline-0.125-0.5.json").unlink()
    failed = repo.run("python", "stages/aggregate.py", check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "dvc repro train_reference@baseline-0.125-0.5" in failed.stderr
