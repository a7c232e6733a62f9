"""results/: the floors computed from a hand-built study, and the committed cpu run's report,
tables and README block agreeing with each other (not that they are fresh)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mobilenet_study import results
from mobilenet_study.study.table import PairedTests, Predictions

from .conftest import REPO_ROOT

CPU = REPO_ROOT / "results" / "cpu"
N = 200  # test images of the hand-built study


def cells(line: str) -> list[str]:
    """A Markdown table row's cells, stripped of the padding (any other line: one cell)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _predictions(correct: np.ndarray) -> Predictions:
    actual = np.array(["cat"] * len(correct))
    predicted = np.where(correct, "cat", "dog")
    return Predictions(Path("made-up.csv"), actual, predicted)


def _study(correct: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for name, right in correct.items():
        model, width, resolution, seed = name.rsplit("-", 3)
        acc = right.mean()
        rows.append(
            {
                "run": name,
                "model": model,
                "width": float(width),
                "resolution": float(resolution),
                "seed": int(seed),
                "first_seed": True,
                "test_images": len(right),
                "test_correct": int(right.sum()),
                "test_accuracy": acc,
                "test_accuracy_ci_low": acc - 0.05,
                "test_accuracy_ci_high": acc + 0.05,
            }
        )
    return pd.DataFrame(rows)


def _correct(first_right: int) -> np.ndarray:
    return np.arange(N) < first_right


def test_floors_by_hand() -> None:
    # V1 at (1, 1): 150/200 = 75% >= 70%. Baseline there: 160/200, right on a superset of
    # V1's images (only_a = 0, only_b = 10). V1 at α 0.25: images 0-99, so against V1 at
    # α 1 (0-149): 50 discordant pairs all one way, p = 2 * 0.5**50. V1 at ρ 0.5: images 5-154
    # (150 right): 5 right only at ρ 0.5... see below.
    rho_low = np.zeros(N, dtype=bool)
    rho_low[5:155] = True  # 150 right, 5 only here (150-154), 5 only at ρ 1 (0-4)
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(150),
        "baseline-1.0-1.0-0": _correct(160),
        "mobilenet_v1-0.25-1.0-0": _correct(100),
        "mobilenet_v1-1.0-0.5-0": rho_low,
        "mobilenet_v1-0.25-0.5-0": _correct(90),
        "baseline-0.25-1.0-0": _correct(120),
    }
    study = _study(correct)
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = {f.name: f for f in results.floors(study, tests)}

    assert found["V1 accuracy"].met and "75.0%" in found["V1 accuracy"].measured
    above = found["baseline above V1"]
    assert above.met and (above.only_a, above.only_b) == (0, 10)
    assert above.p_value == pytest.approx(2 * 0.5**10)
    alpha = found["α ends separated"]
    assert (alpha.only_a, alpha.only_b) == (0, 50) and alpha.met
    assert alpha.p_value == pytest.approx(2 * 0.5**50)
    rho = found["ρ ends separated"]
    assert (rho.only_a, rho.only_b) == (5, 5) and not rho.met and rho.p_value == 1.0
    assert "missed" in results.floors_table(found.values())
    assert "3 of 4 floors are met" in results.floors_sentence(list(found.values()))


def test_a_low_accuracy_misses_the_floor_and_says_by_how_much() -> None:
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(139),  # 69.5%
        "baseline-1.0-1.0-0": _correct(100),
        "mobilenet_v1-0.5-1.0-0": _correct(139),
        "mobilenet_v1-1.0-0.5-0": _correct(139),
    }
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = {f.name: f for f in results.floors(_study(correct), tests)}
    assert not found["V1 accuracy"].met
    assert "69.5%" in results.floors_sentence(list(found.values()))
    assert not found["baseline above V1"].met


def test_readme_block_is_replaced_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\n{results.README_START}\nold\n{results.README_END}\n\nrest\n")
    results.update_readme("new block", readme)
    text = readme.read_text()
    assert "old" not in text and "new block" in text and text.endswith("rest\n")


# --- The committed cpu run ------------------------------------------------------------------


@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    return pd.read_csv(CPU / "study.csv")


def test_every_run_is_tested_on_all_test_images(study: pd.DataFrame) -> None:
    assert (study["test_images"] == 10_000).all()
    assert np.allclose(study["test_accuracy"], study["test_correct"] / study["test_images"])


def test_the_report_quotes_the_tables_accuracies(study: pd.DataFrame) -> None:
    report = (CPU / "report.md").read_text()
    runs = report[report.index("## Runs") : report.index("\n## ", report.index("## Runs") + 1)]
    for _, row in study.iterrows():
        line = next(line for line in runs.splitlines() if cells(line)[:1] == [row["run"]])
        quoted = [float(x) for x in re.findall(r"(\d+\.\d)%", line)]
        exact = 100 * row["test_correct"] / 10_000
        assert any(abs(q - exact) <= 0.05 + 1e-9 for q in quoted), (row["run"], quoted, exact)


def test_the_floors_agree_with_the_table_and_a_binomial_test(study: pd.DataFrame) -> None:
    floors = pd.read_csv(CPU / "floors.csv")
    rows = [cells(line) for line in (CPU / "report.md").read_text().splitlines()]
    by_run = study.set_index("run")
    for _, floor in floors.iterrows():
        outcome = "met" if floor["met"] else "**missed**"
        assert [floor["asks"], floor["measured"], outcome] in rows
        if floor["name"] == "V1 accuracy":
            accuracy = by_run.loc[floor["run_a"], "test_correct"] / 10_000
            assert floor["met"] == (accuracy >= results.FLOOR_ACCURACY)
            continue
        only_a, only_b = int(floor["only_a"]), int(floor["only_b"])
        # The discordant counts account for the two runs' accuracies...
        correct_a = by_run.loc[floor["run_a"], "test_correct"]
        correct_b = by_run.loc[floor["run_b"], "test_correct"]
        assert correct_b - correct_a == only_b - only_a
        # ...and give the p-value by an exact binomial test done here.
        p = stats.binomtest(only_b, only_a + only_b, 0.5).pvalue
        assert floor["p_value"] == pytest.approx(p, rel=1e-9)
        if floor["name"] == "baseline above V1":
            assert floor["met"] == (correct_b > correct_a)
        else:
            assert floor["met"] == (p < 0.05)


def test_the_run_record_and_the_readme_block(study: pd.DataFrame) -> None:
    record = json.loads((CPU / "run.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    assert record["wall_seconds"] == pytest.approx(sum(a["wall_s"] for a in record["attempts"]))
    assert set(record["train_seconds"]) == set(study["run"])
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(results.README_START)[1].split(results.README_END)[0]
    assert block.strip() == (CPU / "summary.md").read_text().strip()
    assert readme.index(results.README_START) < readme.index("## Two commands")
