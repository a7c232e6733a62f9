"""results/: the committed cpu run's report, tables, floors and README block agreeing with each
other (not that they are fresh), and the README block's replacement."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mobilenet_study import results
from mobilenet_study.study.floors import FLOOR_ACCURACY

from .conftest import REPO_ROOT

CPU = REPO_ROOT / "results" / "cpu"


def cells(line: str) -> list[str]:
    """A Markdown table row's cells, stripped of the padding (any other line: one cell)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


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
            assert floor["met"] == (accuracy >= FLOOR_ACCURACY)
            continue
        only_a, only_b = int(floor["only_a"]), int(floor["only_b"])
        # The discordant counts account for the two runs' accuracies...
        correct_a = by_run.loc[floor["run_a"], "test_correct"]
        correct_b = by_run.loc[floor["run_b"], "test_correct"]
        assert correct_b - correct_a == only_b - only_a
        # ...and give the p-value by an exact binomial test done here.
        p = stats.binomtest(only_b, only_a + only_b, 0.5).pvalue
        assert floor["p_value"] == pytest.approx(p, rel=1e-9)
        if floor["name"].startswith("§4.2"):  # answered whichever way the test separates
            assert floor["met"] == (p < 0.05)
        else:  # run B above run A, and the test says so
            assert floor["met"] == (correct_b > correct_a and p < 0.05)


def test_the_run_record_and_the_readme_block(study: pd.DataFrame) -> None:
    record = json.loads((CPU / "run.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    assert record["wall_seconds"] == pytest.approx(sum(a["wall_s"] for a in record["attempts"]))
    assert set(record["train_seconds"]) == set(study["run"])
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(results.README_START)[1].split(results.README_END)[0]
    assert block.strip() == (CPU / "summary.md").read_text().strip()
    assert readme.index(results.README_START) < readme.index("## Two commands")


def test_the_budget_says_where_the_time_went() -> None:
    study = pd.DataFrame(
        {
            "model": ["mobilenet_v1", "mobilenet_v1", "baseline"],
            "seed": [0, 0, 0],
            "train_seconds": [1800.0, 1800.0, 5400.0],
        }
    )
    record = {"attempts": [{"wall_s": 7200.0}, {"wall_s": 5400.0}], "wall_seconds": 12600.0}
    text = results.budget_text(record, study)
    assert "2 attempt(s), 2 h 00 min + 1 h 30 min of wall time" in text
    assert "MobileNet V1 1 h 00 min (2 runs); baseline CNN 1 h 30 min (1 run)" in text
    assert "the other stages, start-up, compiling and training redone after a stop, 1 h 00" in text
    assert "trained once" in text
    # Runs restored from the run-cache: more training than wall time, not a negative rest.
    restored = results.budget_text({**record, "wall_seconds": 600.0}, study)
    assert "restored from DVC's run-cache" in restored and "−" not in restored
