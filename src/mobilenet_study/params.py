"""Reading params.yaml into typed, validated values.

Every stage validates the sections it uses once, at load, before any work is done and before
any output is written. A bad value raises :class:`ParamError` naming the key, the value and
what is allowed; stage entry points turn that into a one-paragraph message and exit code 2.

A section is a frozen dataclass deriving from :class:`Section`: its fields are its keys, their
annotations and :func:`setting` say what each key allows, and :func:`read_section` reads it.
The checks are declared once, beside the values they guard, so the list of known keys, the
bounds in error messages and the dataclass can never disagree.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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


# --- Checks of one value, found at a dotted key ------------------------------------------------


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


def as_integer(key: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Check that ``value`` (found at ``key``) is a whole number in [low, high]."""
    bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(key, value, f"expected a whole number in {bounds}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParamError(key, value, f"allowed: a whole number in {bounds}")
    return value


def as_list(key: str, value: Any, empty: bool = False) -> list[Any]:
    """Check that ``value`` (found at ``key``) is a list, non-empty unless ``empty``."""
    if not isinstance(value, list) or not (value or empty):
        raise ParamError(key, value, "expected a list" if empty else "expected a non-empty list")
    return value


def as_matrix(key: str, value: Any) -> list[list[float]]:
    """A rectangular, non-empty list of lists of finite numbers (a 2-D matrix)."""
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


def _as_mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParamError(key, value, "expected a mapping of settings")
    return value


# --- Sections: dataclasses whose fields declare their keys -------------------------------------


@dataclasses.dataclass(frozen=True)
class _Setting:
    """What :func:`setting` records in a field's metadata."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: Sequence[Any] | None = None
    convert: Callable[[str, Any], Any] | None = None
    required: bool = False
    name: str | None = None
    inline: bool = False
    from_section: bool = True
    empty: bool = False


_METADATA_KEY = "params_setting"
_PLAIN = _Setting()


def setting(
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    choices: Sequence[Any] | None = None,
    convert: Callable[[str, Any], Any] | None = None,
    default: Any = dataclasses.MISSING,
    required: bool = False,
    name: str | None = None,
    inline: bool = False,
    from_section: bool = True,
    empty: bool = False,
) -> Any:
    """A section field with what its key allows, for :func:`read_section`.

    The annotation gives the base check: ``int``, ``float``, ``bool``, ``str`` (non-empty),
    ``tuple[X, ...]`` (a non-empty list of distinct X), or a nested section dataclass (a
    sub-section, read recursively). Then:

    - ``low``/``high``/``low_inclusive``: the bounds of a number; ``choices``: the values allowed.
    - ``convert(key, value) -> field value``: replaces the base check, for values the annotation
      cannot describe (a matrix, a list of fixed length, a value kept as written).
    - For ``tuple[X, ...]``, all of the above apply to each entry, at the key ``key[i]``;
      ``empty=True`` allows an empty list.
    - ``default``: the value when the key is absent. ``required=True`` keeps the key required
      in params.yaml all the same: the default then only serves code that builds the dataclass.
    - ``name``: the key in params.yaml, where it differs from the field's name.
    - ``inline=True``: a sub-section whose keys sit in this section's own mapping.
    - ``from_section=False``: not read from the section; the class's :meth:`Section.checked`
      fills it in (from another section) or the default stands.
    """
    metadata = {
        _METADATA_KEY: _Setting(
            low=low,
            high=high,
            low_inclusive=low_inclusive,
            choices=choices,
            convert=convert,
            required=required,
            name=name,
            inline=inline,
            from_section=from_section,
            empty=empty,
        )
    }
    return dataclasses.field(default=default, metadata=metadata)


S = TypeVar("S", bound="Section")
T = TypeVar("T")


class Section:
    """Base of a section dataclass: ``from_params`` and the cross-field hook, defined once."""

    # The top-level key a section is read from; a sub-section, read through its parent, has none.
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_params(cls: type[S], params: Mapping[str, Any]) -> S:
        """The section ``SECTION`` of ``params``, read and checked by :func:`read_section`."""
        return read_section(cls, params, cls.SECTION)

    def checked(self: S, params: Mapping[str, Any], key: str) -> S:
        """Checks across fields, run by the reader once every field is read (``key`` is the
        section's dotted key). Returns the section, or a copy completed from its other values
        or from another section of ``params``. By default there are none."""
        return self


def read_section(cls: type[T], params: Mapping[str, Any], key: str) -> T:
    """Read the mapping at ``key`` of ``params`` into the section dataclass ``cls``.

    A key that is no field is an :class:`UnknownKeyError` naming the closest known one, so a
    typo is never silently ignored; a missing or bad value is a :class:`ParamError` naming its
    full dotted key. ``params`` is passed on to the sections' :meth:`Section.checked` hooks.
    """
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ParamError(key, None, "this key is required")
        node = node[part]
    return _read(cls, _as_mapping(key, node), key, params)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _setting(field: dataclasses.Field) -> _Setting:
    return field.metadata.get(_METADATA_KEY, _PLAIN)


def section_keys(cls: type) -> tuple[str, ...]:
    """The keys a section may hold, in field order (an inline sub-section's keys in its place)."""
    keys: list[str] = []
    for field in dataclasses.fields(cls):
        spec = _setting(field)
        if spec.inline:
            keys += section_keys(_hints(cls)[field.name])
        elif spec.from_section:
            keys.append(spec.name or field.name)
    return tuple(keys)


def _read(cls: type[T], mapping: Mapping[str, Any], key: str, params: Mapping[str, Any]) -> T:
    known = section_keys(cls)
    for name in mapping:
        if name not in known:
            raise UnknownKeyError(key, name, known)
    return _build(cls, mapping, key, params)


def _build(cls: type[T], mapping: Mapping[str, Any], key: str, params: Mapping[str, Any]) -> T:
    """The fields of ``cls`` from ``mapping`` (already checked for unknown keys)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        spec = _setting(field)
        hint = _hints(cls)[field.name]
        name = spec.name or field.name
        if spec.inline:
            values[field.name] = _build(hint, mapping, key, params)
        elif not spec.from_section:
            continue
        elif name in mapping:
            values[field.name] = _value(hint, spec, f"{key}.{name}", mapping[name], params)
        elif spec.required or field.default is dataclasses.MISSING:
            raise ParamError(f"{key}.{name}", None, "this key is required")
    built = cls(**values)
    return built.checked(params, key) if isinstance(built, Section) else built


def _value(hint: Any, spec: _Setting, key: str, value: Any, params: Mapping[str, Any]) -> Any:
    """One field's value: a ``tuple[X, ...]`` entry by entry, anything else as one value."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        entries = [
            _one(args[0], spec, f"{key}[{i}]", entry, params)
            for i, entry in enumerate(as_list(key, value, spec.empty))
        ]
        if len(set(entries)) != len(entries):
            raise ParamError(key, entries, "expected distinct values")
        return tuple(entries)
    return _one(hint, spec, key, value, params)


def _one(hint: Any, spec: _Setting, key: str, value: Any, params: Mapping[str, Any]) -> Any:
    if spec.convert is not None:
        return spec.convert(key, value)
    if dataclasses.is_dataclass(hint):
        return _read(hint, _as_mapping(key, value), key, params)
    if spec.choices is not None:
        if value not in spec.choices:
            raise ParamError(key, value, f"allowed: {', '.join(map(str, spec.choices))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamError(key, value, "expected true or false")
        return value
    if hint is int:
        return as_integer(key, value, low=spec.low, high=spec.high)
    if hint is float:
        return as_number(key, value, low=spec.low, high=spec.high, low_inclusive=spec.low_inclusive)
    if hint is str:
        if not isinstance(value, str) or not value.strip():
            raise ParamError(key, value, "expected a non-empty string")
        return value
    raise TypeError(f"no check for {hint!r} at `{key}`: give its setting a convert=")
