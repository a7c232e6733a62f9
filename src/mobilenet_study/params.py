"""Reading params.yaml into typed, validated values.

Every stage validates the sections it uses once, at load, before any work is done and before
any output is written. A bad value raises :class:`ParamError` naming the key, the value and
what is allowed; stage entry points turn that into a one-paragraph message and exit code 2.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"
# The top-level sections of params.yaml; each stage reads some of them (dvc.yaml lists which).
SECTIONS = (
    "data", "residual", "conv_grad", "grid", "cost", "train", "checkpoint", "deploy", "gradcam",
    "theory",
)  # fmt: skip


class StudyError(Exception):
    """An error the user can fix (bad params, missing input): reported without a traceback."""


class ParamError(StudyError, ValueError):
    """A value in params.yaml is missing or not allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"params.yaml: `{key}` is {value!r}; {allowed}")


class UnknownKeyError(StudyError, ValueError):
    """A key in params.yaml that no stage reads: a typo would otherwise be silently ignored."""

    def __init__(self, section: str, key: str, known: Sequence[str]) -> None:
        self.section, self.key, self.known = section, key, tuple(known)
        dotted = f"{section}.{key}" if section else key
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
        where = f"`{section}`" if section else "params.yaml"
        hint = (
            f"did you mean `{f'{section}.{close[0]}' if section else close[0]}`?"
            if close
            else f"the settings of {where} are: {', '.join(map(str, known))}."
        )
        super().__init__(f"params.yaml: `{dotted}` is not a setting; {hint}")


_MISSING = object()


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read a params file into a dict; a missing or non-mapping file is a StudyError."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise StudyError(f"{path} not found: run stages from the repository root") from err
    except yaml.YAMLError as err:
        raise StudyError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise StudyError(f"{path} must hold a mapping of sections, found {type(raw).__name__}")
    for name in raw:
        if name not in SECTIONS:
            raise UnknownKeyError("", name, SECTIONS)
    return raw


def section(params: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The mapping under a top-level (or dotted) key."""
    value = get(params, key)
    if not isinstance(value, Mapping):
        raise ParamError(key, value, "expected a mapping of settings")
    return value


def known_keys(params: Mapping[str, Any], key: str, known: Iterable[str]) -> Mapping[str, Any]:
    """The mapping under ``key``, checked to hold no key outside ``known``: a misspelt setting
    (``train.epoch``) is an error naming the closest known one, never silently ignored."""
    value = section(params, key)
    known = tuple(known)
    for name in value:
        if name not in known:
            raise UnknownKeyError(key, name, known)
    return value


def get(params: Mapping[str, Any], key: str, default: Any = _MISSING) -> Any:
    """The value at a dotted key such as ``train.epochs``; a missing key is a ParamError."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if default is not _MISSING:
                return default
            raise ParamError(key, None, "this key is required")
        node = node[part]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def as_number(
    key: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    """Check that ``value`` (found at ``key``) is a finite number in [low, high] or (low, high]."""
    lo_sym = "[" if low_inclusive else "("
    bounds = f"{lo_sym}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if not _is_number(value):
        raise ParamError(key, value, f"expected a number in {bounds}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    if too_low or (high is not None and value > high):
        raise ParamError(key, value, f"allowed: a number in {bounds}")
    return float(value)


def number(
    params: Mapping[str, Any],
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    default: Any = _MISSING,
) -> float:
    """The finite number at ``key``, checked by :func:`as_number`."""
    value = get(params, key, default)
    return as_number(key, value, low=low, high=high, low_inclusive=low_inclusive)


def integer(
    params: Mapping[str, Any],
    key: str,
    *,
    low: int | None = None,
    high: int | None = None,
    default: Any = _MISSING,
) -> int:
    """A whole number in [low, high]."""
    return as_integer(key, get(params, key, default), low=low, high=high)


def as_integer(key: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Check that ``value`` (found at ``key``) is a whole number in [low, high]."""
    bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(key, value, f"expected a whole number in {bounds}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParamError(key, value, f"allowed: a whole number in {bounds}")
    return value


def boolean(params: Mapping[str, Any], key: str, *, default: Any = _MISSING) -> bool:
    value = get(params, key, default)
    if not isinstance(value, bool):
        raise ParamError(key, value, "expected true or false")
    return value


def text(params: Mapping[str, Any], key: str, *, default: Any = _MISSING) -> str:
    value = get(params, key, default)
    if not isinstance(value, str) or not value.strip():
        raise ParamError(key, value, "expected a non-empty string")
    return value


def choice(
    params: Mapping[str, Any], key: str, allowed: Sequence[str], *, default: Any = _MISSING
) -> str:
    value = get(params, key, default)
    if value not in allowed:
        raise ParamError(key, value, f"allowed: {', '.join(map(str, allowed))}")
    return value


def items(params: Mapping[str, Any], key: str) -> list[Any]:
    """A non-empty list at ``key``."""
    value = get(params, key)
    if not isinstance(value, list) or not value:
        raise ParamError(key, value, "expected a non-empty list")
    return value


def integer_list(
    params: Mapping[str, Any], key: str, *, low: int | None = None, high: int | None = None
) -> tuple[int, ...]:
    """A non-empty list of distinct whole numbers, each checked by :func:`as_integer`."""
    values = [
        as_integer(f"{key}[{i}]", entry, low=low, high=high)
        for i, entry in enumerate(items(params, key))
    ]
    return tuple(distinct(key, values))


def distinct(key: str, values: list[Any]) -> list[Any]:
    """``values`` (found at ``key``), refused if any appears twice."""
    if len(set(values)) != len(values):
        raise ParamError(key, values, "expected distinct values")
    return values


def matrix(params: Mapping[str, Any], key: str) -> list[list[float]]:
    """A rectangular, non-empty list of lists of finite numbers (a 2-D matrix)."""
    value = get(params, key)
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise ParamError(key, value, "expected a non-empty matrix: a list of rows of numbers")
    width = len(value[0])
    if width == 0:
        raise ParamError(key, value, "expected rows with at least one number")
    for i, row in enumerate(value):
        if len(row) != width:
            raise ParamError(
                key,
                value,
                f"expected a rectangular matrix: row 0 has {width} entries, row {i} has {len(row)}",
            )
        for j, entry in enumerate(row):
            if not _is_number(entry):
                raise ParamError(f"{key}[{i}][{j}]", entry, "expected a finite number")
    return [[float(x) for x in row] for row in value]
