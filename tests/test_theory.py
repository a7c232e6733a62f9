"""docs/theory.md quotes metrics/residual.json: every quoted number must match the file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "theory.md"
METRICS = REPO_ROOT / "metrics" / "residual.json"
# `<!-- metrics/residual.json KEY -->` then a fenced block or an inline `code span`.
QUOTE = re.compile(
    r"<!-- metrics/residual\.json (?P<key>[\w.]+) -->\s*"
    r"(?:```[^\n]*\n(?P<block>.*?)```|`(?P<inline>[^`]+)`)",
    re.DOTALL,
)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
# What the doc must quote from the file: the exercise's answers.
REQUIRED = {"conv_grad.Y", "conv_grad.dW", "conv_grad.dX"}


def lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        tree = tree[part]
    return tree


def flatten(value: Any) -> list[float]:
    if isinstance(value, list):
        return [x for item in value for x in flatten(item)]
    return [float(value)]


def quotes() -> list[tuple[str, list[float]]]:
    text = DOC.read_text()
    found = []
    for match in QUOTE.finditer(text):
        body = match.group("block") if match.group("block") is not None else match["inline"]
        # Labels such as "dL/dW =" carry no digits; everything numeric is the quoted value.
        found.append((match["key"], [float(x) for x in NUMBER.findall(body)]))
    return found


def test_every_quoted_number_matches_residual_json() -> None:
    metrics = json.loads(METRICS.read_text())
    found = quotes()
    assert {key for key, _ in found} >= REQUIRED
    for key, numbers in found:
        expected = flatten(lookup(metrics, key))
        assert len(numbers) == len(expected), key
        for got, want in zip(numbers, expected, strict=True):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (key, got, want)
    # Quoted as a bound, since its last digits depend on the platform's floating point.
    assert metrics["conv_grad"]["max_abs_error_vs_numeric"] < 1e-10


def test_every_marker_is_followed_by_a_quote() -> None:
    text = DOC.read_text()
    assert text.count("<!-- metrics/residual.json") == len(quotes())


def test_links_to_code_resolve() -> None:
    """Links into the repository resolve (plots/ appear only once the pipeline has run)."""
    for target in re.findall(r"\]\((\.\./[^)#]+)\)", DOC.read_text()):
        path = (DOC.parent / target).resolve()
        if Path(target).parts[1] not in ("plots",):
            assert path.exists(), target
