"""The aggregate stage's library: the study table, its metrics and the report's sentences."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobilenet_study.data.cifar import CLASSES
from mobilenet_study.data.prepared import DataSummary
from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.params import StudyError
from mobilenet_study.study import families, floors, latency, multipliers, report, table
from mobilenet_study.study.formatting import verdict

TEST_IMAGES = 1000
ACTUAL = np.array([CLASSES[i % len(CLASSES)] for i in range(TEST_IMAGES)])
# Words that claim a difference; a sentence whose test says "within noise" may hold none.
CLAIMS = re.compile(
    r"gains accuracy|costs accuracy|V1 more accurate|baseline more accurate|"
    r"more accurate than V1|less accurate than V1|\| more accurate \||\| less accurate \||"
    r"more accurate than the baseline's|frontier is more accurate"
)


def numbers(text: str) -> list[float]:
    """The numbers a text quotes, in order (signs, thousands separators and % dropped): the
    tests check what a sentence says, not how it words it."""
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def correct_vector(accuracy: float, seed: int = 0) -> np.ndarray:
    correct = np.zeros(TEST_IMAGES, dtype=bool)
    correct[: round(accuracy * TEST_IMAGES)] = True
    return np.random.default_rng(seed).permutation(correct)


def changed(correct: np.ndarray, lose: int, gain: int, seed: int = 1) -> np.ndarray:
    """``correct`` with ``lose`` right answers made wrong and ``gain`` wrong ones made right:
    exactly ``lose`` + ``gain`` discordant images against it."""
    rng = np.random.default_rng(seed)
    out = correct.copy()
    out[rng.choice(np.flatnonzero(correct), lose, replace=False)] = False
    out[rng.choice(np.flatnonzero(~correct), gain, replace=False)] = True
    return out


def predictions(correct: np.ndarray) -> table.Predictions:
    wrong = np.array([CLASSES[(i + 1) % len(CLASSES)] for i in range(TEST_IMAGES)])
    return table.Predictions(Path("in-memory.csv"), ACTUAL, np.where(correct, ACTUAL, wrong))


def run_inputs(run: Run, correct: np.ndarray, params: int, macs: int) -> table.RunInputs:
    accuracy = float(correct.mean())
    metrics = {
        "model": run.model,
        "width": run.width,
        "resolution": run.resolution,
        "seed": run.seed,
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
    return table.RunInputs(run, metrics, curves, predictions(correct))


def cost_rows(runs: list[table.RunInputs], device: str = "cpu") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": r.run.model,
                "width": r.run.width,
                "resolution": r.run.resolution,
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


def run(model: str, width: float, resolution: float = 1.0, seed: int = 0) -> Run:
    block = "reference" if model == "mobilenet_v2" else "sweep"
    return Run(GridPoint(model, width, resolution, block), seed)


V1_FULL = correct_vector(0.800)


@pytest.fixture
def runs() -> list[table.RunInputs]:
    # MobileNet at α 1 and 0.5, the baseline (standard convs) at α 1: made-up round numbers.
    # α 0.5 loses 21 images α 1 gets right (a real loss); the baseline gets 50 more right.
    return [
        run_inputs(run("mobilenet_v1", 1.0), V1_FULL, 3_200_000, 36_000_000),
        run_inputs(run("mobilenet_v1", 0.5), changed(V1_FULL, 21, 0), 1_000_000, 10_000_000),
        run_inputs(run("baseline", 1.0), changed(V1_FULL, 0, 50), 22_400_000, 360_000_000),
    ]


@pytest.fixture
def study(runs: list[table.RunInputs]) -> pd.DataFrame:
    return table.study_table(runs, cost_rows(runs), first_seed=0)


@pytest.fixture
def tests_of(runs: list[table.RunInputs]) -> table.PairedTests:
    return table.PairedTests.of(runs)


def test_pareto_frontier_keeps_the_undominated_points() -> None:
    costs = [1, 2, 3, 4, 2]
    values = [0.1, 0.3, 0.2, 0.5, 0.3]
    # (3, 0.2) is beaten by (2, 0.3); the two equal points (2, 0.3) do not dominate each other.
    assert table.pareto_frontier(costs, values) == [True, True, False, True, True]


def test_study_table_joins_runs_cost_and_intervals(study: pd.DataFrame) -> None:
    assert list(study.columns) == list(table.COLUMNS)
    assert study["run"].tolist() == [
        "mobilenet_v1-1.0-1.0-0",
        "mobilenet_v1-0.5-1.0-0",
        "baseline-1.0-1.0-0",
    ]
    assert study["test_accuracy"].tolist() == [0.8, 0.779, 0.85]
    assert study["test_correct"].tolist() == [800, 779, 850]
    # Wilson 95% interval of 800/1000 by hand: centre 0.798852, half-width 0.024771.
    first = study.iloc[0]
    assert first["test_accuracy_ci_low"] == pytest.approx(0.774081, abs=1e-6)
    assert first["test_accuracy_ci_high"] == pytest.approx(0.823623, abs=1e-6)
    assert study["latency_ms_per_image_cpu"].tolist() == [36.0, 10.0, 360.0]
    assert study["latency_ms_per_image_gpu"].isna().all()
    # The α 1 MobileNet costs more than α 0.5 and is more accurate: still undominated.
    assert study["pareto_frontier"].tolist() == [True, True, True]
    assert study["model_frontier"].tolist() == [True, True, True]
    assert (study["seeds"] == 1).all() and study["test_accuracy_seed_std"].isna().all()


def test_seeds_give_mean_and_std_and_the_first_seed_is_paired(
    runs: list[table.RunInputs],
) -> None:
    second_seed = run("mobilenet_v1", 1.0, seed=1)
    second = run_inputs(second_seed, correct_vector(0.7), 3_200_000, 36_000_000)
    study = table.study_table([*runs, second], cost_rows(runs), first_seed=0)
    point = study[study["run"].str.startswith("mobilenet_v1-1.0-1.0-")]
    assert point["seeds"].tolist() == [2, 2]
    assert point["test_accuracy_seed_mean"].tolist() == pytest.approx([0.75, 0.75])
    # Sample std of 0.8 and 0.7: √((0.05² + 0.05²) / 1) = √0.005.
    assert point["test_accuracy_seed_std"].iloc[0] == pytest.approx(0.0707107, abs=1e-7)
    # Frontier flags and tables look at the first seed's runs only.
    assert point["first_seed"].tolist() == [True, False]
    assert not study.loc[~study["first_seed"], "pareto_frontier"].any()
    assert len(table.first_seed_runs(study)) == 3
    assert "0.75" not in report.runs_table(table.study_table(runs, cost_rows(runs), 0))
    assert "75.0% ± 7.1 (2)" in report.runs_table(study)
    method = report.method_text(study)
    assert "Each point was trained with 2 seeds (0, 1)" in method
    assert "the paired tests compare the runs of seed 0" in method


def test_gpu_latency_goes_to_its_own_column(runs: list[table.RunInputs]) -> None:
    gpu = table.study_table(runs, cost_rows(runs, device="cuda"), first_seed=0)
    assert gpu["latency_ms_per_image_cpu"].isna().all()
    assert gpu["latency_ms_per_image_gpu"].tolist() == [36.0, 10.0, 360.0]


def test_metrics_hold_only_what_people_compare(study: pd.DataFrame) -> None:
    metrics = table.study_metrics(study)
    assert metrics["study"] == {
        "runs": 3,
        "best_run": "baseline-1.0-1.0-0",
        "best_acc": 0.85,
        "frontier": 3,
    }
    # Per run, by the name of its stage: accuracy ± half its 95% interval, MACs, params.
    entry = metrics["mobilenet_v1-0.5-1.0-0"]
    assert set(entry) == {"acc", "acc_ci95", "macs", "params"}
    assert entry["acc"] == 0.779 and entry["macs"] == 10_000_000
    # Wilson 95% half-width of 779/1000 by hand (z = 1.959964, z²/n = 0.0038415):
    # z·√(0.779·0.221/1000 + z²/(4·1000²)) / (1 + z²/n) = 0.0257882 / 1.0038415 = 0.025690.
    assert entry["acc_ci95"] == 0.0257
    assert len(metrics) == 1 + len(study)
    json.dumps(metrics, allow_nan=False)  # DVC's reader rejects NaN


def test_width_sentence_computes_ratios_and_its_test(
    study: pd.DataFrame, tests_of: table.PairedTests
) -> None:
    (change,) = multipliers.multiplier_changes(study, "width")
    assert change.macs_ratio == pytest.approx(3.6)
    assert change.params_ratio == pytest.approx(3.2)
    comparison = tests_of.compare(change.reference["run"], change.other["run"])
    # 21 images lost, none gained: exact McNemar p = 2 · 0.5²¹.
    assert (comparison.only_a, comparison.only_b) == (21, 0)
    assert comparison.p_value == pytest.approx(2 * 0.5**21)
    assert comparison.points == pytest.approx(-2.1)
    (sentence,) = multipliers.change_sentences(study, "width", tests_of)
    assert verdict(comparison, "gains", "costs") == "costs"
    (sentence,) = multipliers.change_sentences(study, "width", tests_of)
    # α 1 → 0.5: MACs 3.6× against α²'s 4.0×, params 3.2×, 80.0% → 77.9%, −2.1 points.
    assert {3.6, 4.0, 3.2, 80.0, 77.9, 2.1} <= set(numbers(sentence))
    assert "costs accuracy" in sentence


def test_a_chance_difference_is_within_noise_everywhere() -> None:
    """Runs that differ only by chance (a handful of images each way): no sentence or table
    row of the report may claim a difference."""
    base = correct_vector(0.6, seed=3)
    chance = [
        run_inputs(run("mobilenet_v1", 1.0), base, 3_200_000, 36_000_000),
        run_inputs(run("mobilenet_v1", 0.5), changed(base, 14, 8, seed=4), 1_000_000, 10_000_000),
        run_inputs(run("baseline", 1.0), changed(base, 9, 15, seed=5), 22_400_000, 360_000_000),
        run_inputs(run("baseline", 0.5), changed(base, 12, 12, seed=6), 5_600_000, 9_000_000),
        run_inputs(run("mobilenet_v2", 1.0), changed(base, 10, 6, seed=7), 2_300_000, 6_000_000),
    ]
    tests = table.PairedTests.of(chance)
    study = table.study_table(chance, cost_rows(chance), first_seed=0)
    # The differences are real numbers, just not supported by their tests.
    (change,) = multipliers.multiplier_changes(study, "width")[:1]
    comparison = tests.compare(change.reference["run"], change.other["run"])
    assert comparison.points == pytest.approx(-0.6) and comparison.p_value > 0.05
    sentence = multipliers.change_sentence(change, comparison)
    assert "within noise" in sentence and {60.0, 59.4, 0.6} <= set(numbers(sentence))
    assert not CLAIMS.search(sentence)

    verdicts = families.baseline_verdicts(study, tests)
    assert verdicts == {"v1": 0, "baseline": 0, "within noise": 2}
    frontier = families.frontier_points(study, tests)
    assert [fp.outcome for fp in frontier] != [] and all(
        fp.outcome in ("within noise", "cheaper than every baseline") for fp in frontier
    )
    text = report.build_report(
        study,
        cost_rows(chance),
        DataSummary("m", "image_folder", "png", False),
        tests,
        table.best_mobilenet(study),
        table.confusion_counts(pd.DataFrame({"actual": ACTUAL, "predicted": ACTUAL}), CLASSES),
        [],
        floors.section(floors.floors(study, tests)),
    )
    assert not CLAIMS.search(text), CLAIMS.search(text)
    assert "within noise" in text


def cells(line: str) -> list[str]:
    """A Markdown table row's cells, stripped of the padding."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_baseline_table_and_paper_line(study: pd.DataFrame, tests_of: table.PairedTests) -> None:
    rendered = families.baseline_table(study, tests_of)
    header, _, ours, paper = rendered.splitlines()
    assert "V1 − baseline, points [95% CI]" in header and "McNemar p" in header
    assert cells(ours)[:6] == ["1", "1", "360.00 / 36.00", "10.0×", "22.40 / 3.20", "7.0×"]
    assert cells(ours)[6:8] == ["85.0% [82.7, 87.1]", "80.0% [77.4, 82.4]"]
    assert cells(ours)[8].startswith("−5.0 [") and cells(ours)[-1] == "baseline more accurate"
    assert cells(paper)[:6] == ["paper", "224 px", "4866 / 569", "8.6×", "29.3 / 4.2", "7.0×"]
    assert cells(paper)[6:9] == ["71.7%", "70.6%", "−1.1"]
    assert families.baseline_verdicts(study, tests_of) == {
        "v1": 0,
        "baseline": 1,
        "within noise": 0,
    }
    lonely = study[study["model"] != "baseline"]
    assert families.baseline_verdicts(lonely, tests_of) == {}
    assert len(families.baseline_summary(lonely, tests_of)) == 2  # says so, beside the paper


def _frontier_study(v1: dict[float, float]) -> tuple[pd.DataFrame, table.PairedTests]:
    """Baseline at 10 M MACs (60%) and 100 M MACs (80%); V1 runs at the given MACs (M) and
    accuracies, each built from the baseline's answers so that the tests see real overlap."""
    base_low = correct_vector(0.6, seed=10)
    base_high = changed(base_low, 0, 200, seed=11)
    inputs = [
        run_inputs(run("baseline", 0.25), base_low, 1_000_000, 10_000_000),
        run_inputs(run("baseline", 1.0), base_high, 9_000_000, 100_000_000),
    ]
    for i, (macs, accuracy) in enumerate(sorted(v1.items())):
        gain = round((accuracy - 0.6) * TEST_IMAGES)
        correct = changed(base_low, max(0, -gain), max(0, gain), seed=20 + i)
        width = [0.25, 0.5, 0.75, 1][i]
        inputs.append(run_inputs(run("mobilenet_v1", width), correct, 500_000, int(macs * 1e6)))
    return table.study_table(inputs, cost_rows(inputs), 0), table.PairedTests.of(inputs)


def test_frontier_is_interpolated_in_log_macs_and_tested() -> None:
    # sqrt(10 · 100) ≈ 31.6 M MACs is halfway in log-MACs: the frontier is at 70% there.
    study, tests = _frontier_study({5.0: 0.70, 31.6227766: 0.85, 200.0: 0.70, 150.0: 0.95})
    points = {fp.run["run"]: fp for fp in families.frontier_points(study, tests)}
    # Widths follow the MACs: 5 M, 31.6 M, 150 M, 200 M.
    below, middle, past, worse = (points[f"mobilenet_v1-{w}-1.0-0"] for w in (0.25, 0.5, 0.75, 1))
    assert np.isnan(below.frontier_accuracy)  # no baseline is that cheap
    assert below.outcome == "more accurate"  # it even beats the cheapest baseline (60%)
    assert middle.frontier_accuracy == pytest.approx(0.70)
    assert middle.points == pytest.approx(15.0) and middle.outcome == "more accurate"
    assert middle.upper["run"] == "baseline-1.0-1.0-0"
    # Past the frontier's dearest run, the frontier stays at its best (80%).
    assert past.frontier_accuracy == pytest.approx(0.80) and past.outcome == "more accurate"
    assert worse.outcome == "less accurate"  # a cheaper baseline (80%) beats its 70%
    outcomes = [fp.outcome for fp in points.values()]
    assert outcomes.count("more accurate") == 3 and outcomes.count("less accurate") == 1
    # The summary quotes the counts, the best margin and the losing budget.
    summary = families.frontier_summary(list(points.values()))
    assert {3.0, 4.0, 15.0, 200.0} <= set(numbers(summary))
    assert 150.0 not in numbers(summary.split("frontier is more accurate")[-1])


def test_frontier_nowhere_better_is_said() -> None:
    study, tests = _frontier_study({31.6227766: 0.69})
    points = families.frontier_points(study, tests)
    assert [fp.outcome for fp in points] == ["within noise"]
    summary = families.frontier_summary(points)
    assert "none" in summary and not CLAIMS.search(summary)


def test_one_multiplier_value_is_said_not_invented(
    study: pd.DataFrame, tests_of: table.PairedTests
) -> None:
    assert multipliers.multiplier_changes(study, "resolution") == []
    assert multipliers.change_sentences(study, "resolution", tests_of) == [
        "Only one ρ was trained per model in this run, so its effect is not measured."
    ]


def test_runs_on_different_test_images_cannot_be_paired(runs: list[table.RunInputs]) -> None:
    other = table.Predictions(Path("other.csv"), ACTUAL[::-1], ACTUAL[::-1])
    tests = table.PairedTests({"a": runs[0].predictions, "b": other})
    with pytest.raises(StudyError, match="different test images"):
        tests.compare("a", "b")


def test_pareto_and_confusion_sentences(study: pd.DataFrame) -> None:
    assert "0 of 3 runs lie below it." in report.pareto_sentence(study)
    counts = table.confusion_counts(
        pd.DataFrame({"actual": ["cat", "cat", "dog"], "predicted": ["dog", "cat", "dog"]}),
        ["cat", "dog"],
    )
    best = table.best_mobilenet(study)
    assert best["run"] == "mobilenet_v1-1.0-1.0-0"  # the baseline is more accurate, not a MobileNet
    first, second = report.confusion_sentences(best, counts)
    assert "80.0% (95% CI 77.4–82.4%) on 3 test images" in first
    assert "highest recall is on dog (recall 100.0%, 95% CI 20.7–100.0%)" in second
    assert "cat taken for dog (1 time)" in second


def test_data_source_is_named() -> None:
    jpeg = DataSummary("mirror", "image_folder", "jpeg", True)
    assert report.data_source_text(jpeg).startswith("JPEG mirror")
    official = DataSummary("url", "official_archive", "png", False)
    assert report.data_source_text(official) == "official archive"
    mixed = DataSummary("m", "image_folder", "jpeg+png", True)
    assert report.data_source_text(mixed).startswith("JPEG mirror")
    png = DataSummary("m", "image_folder", "png", False)
    assert report.data_source_text(png) == "png image-folder mirror (lossless)"


def test_feature_sides_round_odd_sides_up() -> None:
    assert multipliers.feature_sides("mobilenet_v1", 20) == [20, 10, 5, 3, 2]


def test_missing_run_names_the_run_and_its_stage(tmp_path: Path) -> None:
    sweep = run("mobilenet_v1", 0.5)
    reference = run("mobilenet_v2", 1.0, seed=3)
    with pytest.raises(StudyError, match=r"mobilenet_v1-0\.5-1\.0-0.*dvc repro train@mobilenet_v1"):
        table.read_runs([sweep], tmp_path)
    with pytest.raises(StudyError, match=r"dvc repro train_reference@mobilenet_v2-1\.0-1\.0-3"):
        table.read_runs([reference], tmp_path)


# --- deployment (ONNX Runtime) ---------------------------------------------------------------


def deployed_summary(
    run_name: str,
    fp32_acc: float,
    int8_acc: float,
    ms: float,
    batches: tuple[tuple[int, float], ...] = ((1, 1.0), (32, 0.2)),
) -> dict:
    """A deploy stage summary: ONNX Runtime ``ms`` per image at batch 1 (fp32), int8 at 0.6 of
    it, PyTorch eager at 3 times; each (batch, scale) of ``batches`` at ``scale`` times batch
    1's per-image time (by default batch 32 at a fifth)."""
    latencies = []
    for threads in (1, 2):
        for batch, scale in batches:
            for engine, precision, factor in (
                ("onnxruntime", "fp32", 1.0),
                ("onnxruntime", "int8", 0.6),
                ("torch", "fp32", 3.0),
            ):
                latencies.append(
                    {
                        "engine": engine,
                        "precision": precision,
                        "threads": threads,
                        "batch_size": batch,
                        "ms_per_image_median": ms * scale * factor / threads,
                        "ms_per_image_iqr": 0.01,
                    }
                )
    return {
        "run": run_name,
        "tolerance": 1e-3,
        "max_logit_difference": 2e-6,
        "test_images": TEST_IMAGES,
        "accuracy": {"torch": fp32_acc, "fp32": fp32_acc, "int8": int8_acc},
        "calibration_images": 256,
        "versions": {"torch": "2.14.1", "onnx": "1.23.2", "onnxruntime": "1.32.0"},
        "all_threads": 2,
        "latency": latencies,
    }


def with_deployment(
    inputs: table.RunInputs, int8: np.ndarray, ms: float, **batches: object
) -> table.RunInputs:
    fp32 = inputs.predictions.correct
    summary = deployed_summary(inputs.run.name, fp32.mean(), int8.mean(), ms, **batches)
    return table.RunInputs(
        inputs.run, inputs.metrics, inputs.curves, inputs.predictions, summary, predictions(int8)
    )


def test_deployment_section_tests_int8_and_measures_the_ratios(
    runs: list[table.RunInputs],
) -> None:
    # α 1: int8 loses 40 images fp32 gets right (real); α 0.5: 6 lost, 4 gained (noise).
    full, half, base = runs
    deployed = [
        with_deployment(full, changed(full.predictions.correct, 40, 0, seed=8), 2.0),
        with_deployment(half, changed(half.predictions.correct, 6, 4, seed=9), 1.0),
        with_deployment(base, base.predictions.correct, 8.0),
    ]
    study = table.study_table(deployed, cost_rows(deployed), first_seed=0)
    tests = table.PairedTests.of(deployed)
    latencies = latency.latency_table(deployed)
    assert len(latencies) == 3 * 12
    table_rows = latency.deploy_table(study, deployed, latencies)
    summary, rows, notes = latency.section(study, deployed, latencies, table_rows, tests)
    header, _, *lines = rows.splitlines()
    assert "ORT/torch" in header and "int8 − fp32, points [95% CI]" in header
    full_row, half_row, _ = (cells(line) for line in lines)
    assert full_row[3:7] == ["2.000", "1.200", "0.33×", "0.60×"]
    assert full_row[7] == "0.240"  # int8 per image at batch 32: 2 ms x 0.6 x 0.2
    assert full_row[-1] == "int8 costs accuracy" and full_row[-3].startswith("−4.0 [")
    assert half_row[-1] == "within noise" and not CLAIMS.search(" ".join(half_row))
    # Geometric means of ORT/torch (1/3) and int8/fp32 (0.6); int8 worse at 1 run of 3.
    assert {0.33, 0.60} <= set(numbers(summary))
    int8_verdicts = [
        verdict(tests.compare(r.run.name, f"{r.run.name}.int8"), "better", "worse")
        for r in deployed
    ]
    assert int8_verdicts == ["worse", "within noise", "within noise"]
    # α 1 → 0.5: MACs 3.6× (α² 4×), latency 2× (2 → 1 ms); batch 32 is 0.2 ms per image, so
    # batching saves 80% of batch 1's time.
    assert {3.6, 4.0, 2.0, 1.000, 80.0} <= set(numbers(notes))
    assert set(table_rows["series"]) == {
        "mobilenet_v1 fp32",
        "mobilenet_v1 int8",
        "baseline fp32",
        "baseline int8",
    }
    int8 = table_rows[(table_rows["run"] == "mobilenet_v1-1.0-1.0-0")].set_index("precision")
    assert int8.loc["int8", "latency_ms"] == pytest.approx(1.2)
    assert int8.loc["int8", "test_accuracy"] == pytest.approx(0.76)
    # Wilson 95% interval of 760/1000 by hand: centre (0.76 + z²/2000) / (1 + z²/1000) =
    # 0.759005, half-width z·√(0.76·0.24/1000 + z²/(4·1000²)) / (1 + z²/1000) = 0.026438.
    assert int8.loc["int8", "test_accuracy_ci_low"] == pytest.approx(0.732567, abs=1e-6)
    assert int8.loc["int8", "test_accuracy_ci_high"] == pytest.approx(0.785443, abs=1e-6)


@pytest.mark.parametrize(
    ("batches", "column", "saving"),
    [
        (((1, 1.0), (8, 0.5)), "int8 ms, batch 8", "At batch 8 the smaller model takes 0.500 ms"),
        (((1, 1.0),), None, None),
    ],
)
def test_the_deploy_report_follows_deploy_batch_sizes(
    runs: list[table.RunInputs], batches: tuple, column: str | None, saving: str | None
) -> None:
    """deploy.batch_sizes [1, 8]: the table and the scaling sentences show batch 8, at half of
    batch 1's time per image (1 ms → 0.5 ms for the α 0.5 run); [1]: no batched column or
    sentence, and no empty cells."""
    full, half, base = runs
    deployed = [
        with_deployment(r, r.predictions.correct, ms, batches=batches)
        for r, ms in ((full, 2.0), (half, 1.0), (base, 8.0))
    ]
    study = table.study_table(deployed, cost_rows(deployed), first_seed=0)
    latencies = latency.latency_table(deployed)
    tests = table.PairedTests.of(deployed)
    deployed_table = latency.deploy_table(study, deployed, latencies)
    _, rows, notes = latency.section(study, deployed, latencies, deployed_table, tests)
    header = cells(rows.splitlines()[0])
    assert not [c for line in rows.splitlines() for c in cells(line) if c in ("", "nan")]
    assert [c for c in header if c.startswith("int8 ms, batch")] == ([column] if column else [])
    text = notes  # the scaling bullets
    assert "batch 32" not in rows + text
    if saving:
        # The α 0.5 run at batch 8: 0.5 ms per image, half of its batch-1 time.
        assert saving in text and {8.0, 0.5, 50.0} <= set(numbers(text))
    else:
        assert "batching saves" not in text


@pytest.mark.parametrize(
    ("half_ms", "step", "explanation"),
    [
        (1.0, "but ONNX Runtime fp32 latency only 2.0×", "Where latency falls less than the MACs"),
        (0.55, "and ONNX Runtime fp32 latency about as much, 3.6×", None),
        (
            0.2,
            "and ONNX Runtime fp32 latency more, 10.0×",
            "Where latency falls more than the MACs",
        ),
    ],
)
def test_latency_scaling_says_which_way_it_departs_from_the_macs(
    runs: list[table.RunInputs], half_ms: float, step: str, explanation: str | None
) -> None:
    full, half, base = runs
    deployed = [
        with_deployment(full, full.predictions.correct, 2.0),
        with_deployment(half, half.predictions.correct, half_ms),
        with_deployment(base, base.predictions.correct, 8.0),
    ]
    study = table.study_table(deployed, cost_rows(deployed), first_seed=0)
    notes = latency.latency_scaling_sentences(study, latency.latency_table(deployed))
    # α 1 → 0.5 of V1 is the only step (one baseline run): MACs 3.6×, latency 2 ms → half_ms.
    assert len(notes) == (2 if explanation else 1)
    assert step in notes[0]
    if explanation:
        assert notes[1].startswith(explanation)
    if half_ms == 0.2:
        # Its weights' size, as the likely cause, said as untested.
        assert re.search(r"fp32 weights take \d+\.\d MB against \d+\.\d MB", notes[1])
        assert "not tested here" in notes[1]


def test_the_report_says_which_runs_trained_in_bf16_and_that_all_use_flip_tta() -> None:
    frame = pd.DataFrame(
        {
            "run": ["mobilenet_v1-1.0-1.0-0", "baseline-1.0-1.0-0"],
            "precision": ["fp32", "bf16"],
            "tta": ["flip", "flip"],
        }
    )
    text = report.recipe_text(frame)
    assert "Every run is scored with flip test-time augmentation" in text
    assert "bf16 autocast: baseline-1.0-1.0-0 (" in text
    assert "mobilenet_v1-1.0-1.0-0" not in text
    fp32 = frame.assign(precision="fp32", tta="none")
    assert report.recipe_text(fp32) == ""
