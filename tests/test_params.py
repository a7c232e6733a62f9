"""The declarative params reader itself, on a toy section: the study's sections rely on it to
refuse every bad value by its full dotted key, and on nothing else."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from mobilenet_study import params as p
from mobilenet_study.params import ParamError, UnknownKeyError


def _even(key: str, value: Any) -> int:
    side = p.as_integer(key, value)
    if side % 2:
        raise ParamError(key, side, "allowed: an even number")
    return side


@dataclasses.dataclass(frozen=True)
class Rate(p.Section):
    lr: float = p.setting(low=0.0, high=1.0, low_inclusive=False)
    steps: int = p.setting(low=1, default=10)

    def checked(self, params: Mapping[str, Any], key: str) -> Rate:
        if self.lr * self.steps > 5:
            raise ParamError(f"{key}.lr", self.lr, f"too large for {key}.steps")
        return self


@dataclasses.dataclass(frozen=True)
class Optics:
    focus: Rate
    sizes: tuple[int, ...] = p.setting(low=1, high=64)


@dataclasses.dataclass(frozen=True)
class Toy(p.Section):
    SECTION = "toy"

    mode: str = p.setting(choices=("fast", "slow"))
    count: int = p.setting(low=0, high=9)
    ratio: float = p.setting(low=0.0, low_inclusive=False)
    verbose: bool
    label: str
    side: int = p.setting(name="input_side", convert=_even)
    optics: Optics
    rate: Rate = p.setting(inline=True)
    seed: int = p.setting(low=0, default=0)
    level: int = p.setting(low=0, default=1, required=True)
    minutes: float = p.setting(default=5.0, from_section=False)

    def checked(self, params: Mapping[str, Any], key: str) -> Toy:
        return dataclasses.replace(self, minutes=params.get("clock", {}).get("minutes", 5.0))


def toy(**changes: Any) -> dict[str, Any]:
    section = {
        "mode": "fast",
        "count": 3,
        "ratio": 0.5,
        "verbose": False,
        "label": "a",
        "input_side": 4,
        "optics": {"focus": {"lr": 0.1, "steps": 2}, "sizes": [1, 2]},
        "lr": 0.5,
        "level": 2,
    }
    section.update(changes)
    return {"toy": {k: v for k, v in section.items() if v is not DROP}}


DROP = object()


def test_a_good_section_is_read_with_its_defaults() -> None:
    read = Toy.from_params(toy())
    assert read == Toy(
        mode="fast", count=3, ratio=0.5, verbose=False, label="a", side=4,
        optics=Optics(Rate(0.1, 2), (1, 2)), rate=Rate(0.5, 10), seed=0, level=2, minutes=5.0,
    )  # fmt: skip
    assert p.read_section(Toy, toy(), "toy") == read
    assert p.section_keys(Toy) == (
        "mode", "count", "ratio", "verbose", "label", "input_side", "optics", "lr", "steps",
        "seed", "level",
    )  # fmt: skip


def test_the_hook_fills_a_field_from_another_section() -> None:
    assert Toy.from_params({**toy(), "clock": {"minutes": 2.0}}).minutes == 2.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cuont": 1}, r"`toy\.cuont` is not a setting; did you mean `toy\.count`\?"),
        ({"zzz": 1}, r"`toy\.zzz` is not a setting; the settings of `toy` are: mode, count,"),
        # A field filled by the hook is no key of the section.
        ({"minutes": 1}, r"`toy\.minutes` is not a setting"),
        # The field's name is not a key where the key is named otherwise.
        ({"side": 4}, r"`toy\.side` is not a setting; the settings of `toy` are: .*input_side"),
        ({"optics": {"focus": {"lr": 0.1}, "size": [1]}}, r"did you mean `toy\.optics\.sizes`\?"),
    ],
)
def test_an_unknown_key_names_the_closest_known_one(changes: dict, message: str) -> None:
    with pytest.raises(UnknownKeyError, match=message):
        Toy.from_params(toy(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": DROP}, "`toy.count` is None; this key is required"),
        ({"level": DROP}, "`toy.level` is None; this key is required"),
        ({"lr": DROP}, "`toy.lr` is None; this key is required"),
        ({"count": "3"}, "`toy.count` is '3'; expected a whole number in [0, 9]"),
        ({"count": True}, "`toy.count` is True; expected a whole number in [0, 9]"),
        ({"count": 10}, "`toy.count` is 10; allowed: a whole number in [0, 9]"),
        ({"ratio": 0}, "`toy.ratio` is 0; allowed: a number in (0.0, inf]"),
        ({"ratio": "x"}, "`toy.ratio` is 'x'; expected a number in (0.0, inf]"),
        ({"verbose": "yes"}, "`toy.verbose` is 'yes'; expected true or false"),
        ({"label": " "}, "`toy.label` is ' '; expected a non-empty string"),
        ({"mode": "medium"}, "`toy.mode` is 'medium'; allowed: fast, slow"),
        ({"input_side": 3}, "`toy.input_side` is 3; allowed: an even number"),
        ({"optics": [1]}, "`toy.optics` is [1]; expected a mapping of settings"),
        (
            {"optics": {"focus": {"lr": 2.0}, "sizes": [1]}},
            "`toy.optics.focus.lr` is 2.0; allowed: a number in (0.0, 1.0]",
        ),
        ({"optics": {"focus": {"lr": 0.1}}}, "`toy.optics.sizes` is None; this key is required"),
        (
            {"optics": {"focus": {"lr": 0.1}, "sizes": []}},
            "`toy.optics.sizes` is []; expected a non-empty list",
        ),
        (
            {"optics": {"focus": {"lr": 0.1}, "sizes": [1, 65]}},
            "`toy.optics.sizes[1]` is 65; allowed: a whole number in [1, 64]",
        ),
        (
            {"optics": {"focus": {"lr": 0.1}, "sizes": [2, 2]}},
            "`toy.optics.sizes` is [2, 2]; expected distinct values",
        ),
        # The nested and the inline sub-section's hooks, each with its own dotted key.
        (
            {"optics": {"focus": {"lr": 1.0, "steps": 6}, "sizes": [1]}},
            "`toy.optics.focus.lr` is 1.0; too large for toy.optics.focus.steps",
        ),
        ({"lr": 1.0, "steps": 6}, "`toy.lr` is 1.0; too large for toy.steps"),
    ],
)
def test_a_bad_value_names_its_dotted_key_and_what_is_allowed(changes: dict, message: str) -> None:
    with pytest.raises(ParamError) as caught:
        Toy.from_params(toy(**changes))
    assert str(caught.value) == f"params.yaml: {message}"


def test_a_missing_or_malformed_section_is_refused() -> None:
    with pytest.raises(ParamError, match=r"`toy` is None; this key is required"):
        Toy.from_params({})
    with pytest.raises(ParamError, match=r"`toy` is 3; expected a mapping of settings"):
        Toy.from_params({"toy": 3})


def test_a_type_without_a_check_is_a_programming_error() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd:
        pair: tuple[int, int]

    with pytest.raises(TypeError, match="convert="):
        p.read_section(Odd, {"odd": {"pair": [1, 2]}}, "odd")
