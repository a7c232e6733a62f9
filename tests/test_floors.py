"""The study's floors, computed from hand-built studies whose paired tests are known by hand."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobilenet_study.study import floors
from mobilenet_study.study.table import PairedTests, Predictions

N = 200  # test images of the hand-built study


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
    found = {f.name: f for f in floors.floors(study, tests)}

    assert found["V1 accuracy"].met and "75.0%" in found["V1 accuracy"].measured
    above = found["baseline above V1"]
    assert above.met and (above.only_a, above.only_b) == (0, 10)
    assert above.p_value == pytest.approx(2 * 0.5**10)
    alpha = found["α ends separated"]
    assert (alpha.only_a, alpha.only_b) == (0, 50) and alpha.met
    assert alpha.p_value == pytest.approx(2 * 0.5**50)
    rho = found["ρ ends separated"]
    assert (rho.only_a, rho.only_b) == (5, 5) and not rho.met and rho.p_value == 1.0
    assert "missed" in floors.floors_table(found.values())
    assert "3 of 4 floors are met" in floors.floors_sentence(list(found.values()))


def test_a_low_accuracy_misses_the_floor_and_says_by_how_much() -> None:
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(139),  # 69.5%
        "baseline-1.0-1.0-0": _correct(100),
        "mobilenet_v1-0.5-1.0-0": _correct(139),
        "mobilenet_v1-1.0-0.5-0": _correct(139),
    }
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = {f.name: f for f in floors.floors(_study(correct), tests)}
    assert not found["V1 accuracy"].met
    assert "69.5%" in floors.floors_sentence(list(found.values()))
    assert not found["baseline above V1"].met


def test_floors_the_grid_cannot_measure_are_left_out() -> None:
    # One α, one ρ, no baseline: only the accuracy floor applies.
    correct = {"mobilenet_v1-0.5-0.75-0": _correct(150), "mobilenet_v2-0.5-0.75-0": _correct(9)}
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = floors.floors(_study(correct), tests)
    assert [f.name for f in found] == ["V1 accuracy"]
    assert found[0].met  # 75%
    # No V1 at all: no floor, and the section says so in place of a table.
    only_v2 = {"mobilenet_v2-0.5-0.75-0": _correct(9)}
    assert floors.floors(_study(only_v2), tests) == []
    heading, sentence = floors.section([])
    assert heading == "## Floors" and "no floor applies" in sentence


def test_floors_survive_their_table() -> None:
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(150),
        "baseline-1.0-1.0-0": _correct(160),
        "mobilenet_v1-0.25-1.0-0": _correct(100),
    }
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = floors.floors(_study(correct), tests)
    frame = floors.floors_frame(found)
    assert list(frame.columns)[:4] == ["name", "asks", "measured", "met"]
    back = floors.read_floors(pd.read_csv(io.StringIO(frame.to_csv(index=False))))
    assert [(f.name, f.met, f.run_a, f.only_b) for f in back] == [
        (f.name, f.met, f.run_a, f.only_b) for f in found
    ]
    assert back[0].run_b == "" and np.isnan(back[0].p_value)
