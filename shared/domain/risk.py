"""Risk of a well: a 5 x 5 probability x consequence matrix.

Pure domain code: no I/O. The matrix is configurable cell by cell (the seed stores one row
per cell), so the category always comes from the configured cell, never from the score
alone; the score is only a 0-100 scaling of p x c for sorting and charts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.contracts.enums import RiskCategory, WellType

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Valid probability and consequence levels."""

_CELL_COUNT = len(LEVELS) * len(LEVELS)


def _check_level(name: str, value: Any) -> int:
    # bool is an int subclass; True as a probability is a bug, not level 1.
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise ValueError(f"{name} must be an integer 1..5, got {value!r}")
    return value


def default_category_for_score(score: int) -> RiskCategory:
    """Dethlefs & Chastain (SPE-142854-PA) banding of p x c into four bands, under the
    specification's names: 1-4 low, 5-10 medium, 12-16 high, 17-25 extreme (the paper's
    third and fourth bands, "significant" and "high", are WIMS's high and extreme).

    p x c never takes the values 11, 13, 14, 17, 18 or 19, so the published gaps between
    bands are closed by taking each band up to the next band's first value.
    """
    if score <= 4:
        return RiskCategory.low
    if score <= 10:
        return RiskCategory.medium
    if score <= 16:
        return RiskCategory.high
    return RiskCategory.extreme


class RiskMatrix(Mapping[tuple[int, int], RiskCategory]):
    """An immutable mapping (probability 1..5, consequence 1..5) -> RiskCategory.

    Always complete: every one of the 25 cells has a category, so a lookup never fails for
    a valid level. Hashable and comparable, so it can sit in frozen configuration.
    """

    __slots__ = ("_cells",)
    _cells: tuple[RiskCategory, ...]

    def __init__(self, cells: Mapping[tuple[int, int], RiskCategory | str]) -> None:
        # One validation path for every way of building a matrix.
        built = _validated_cells((p, c, cat) for (p, c), cat in cells.items())
        object.__setattr__(self, "_cells", built)

    @classmethod
    def from_cells(cls, cells: Iterable[tuple[int, int, RiskCategory | str]]) -> RiskMatrix:
        """Build from (probability, consequence, category) rows, as the seed stores them.

        Raises ValueError when a level is out of 1..5, a category is unknown, a cell appears
        twice, or any of the 25 cells is missing.
        """
        matrix = cls.__new__(cls)
        object.__setattr__(matrix, "_cells", _validated_cells(cells))
        return matrix

    @classmethod
    def from_score_bands(cls, category_for_score: Any = default_category_for_score) -> RiskMatrix:
        """Build a matrix whose cell (p, c) is category_for_score(p * c)."""
        return cls.from_cells((p, c, category_for_score(p * c)) for p in LEVELS for c in LEVELS)

    def category(self, probability: int, consequence: int) -> RiskCategory:
        p = _check_level("probability", probability)
        c = _check_level("consequence", consequence)
        return self._cells[(p - 1) * len(LEVELS) + (c - 1)]

    def rows(self) -> list[tuple[int, int, RiskCategory]]:
        """The 25 cells as (probability, consequence, category), in p then c order."""
        return [(p, c, self.category(p, c)) for p in LEVELS for c in LEVELS]

    # Mapping protocol
    def __getitem__(self, key: tuple[int, int]) -> RiskCategory:
        try:
            p, c = key
        except (TypeError, ValueError):
            raise KeyError(key) from None
        try:
            return self.category(p, c)
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((p, c) for p in LEVELS for c in LEVELS)

    def __len__(self) -> int:
        return _CELL_COUNT

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RiskMatrix):
            return self._cells == other._cells
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._cells)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("RiskMatrix is immutable")

    def __repr__(self) -> str:
        grid = "; ".join(
            f"p{p}: " + ",".join(self.category(p, c).value for c in LEVELS) for p in LEVELS
        )
        return f"RiskMatrix({grid})"


def _validated_cells(
    cells: Iterable[tuple[int, int, RiskCategory | str]],
) -> tuple[RiskCategory, ...]:
    found: dict[tuple[int, int], RiskCategory] = {}
    for row in cells:
        try:
            p, c, raw = row
        except (TypeError, ValueError):
            raise ValueError(
                f"each cell must be (probability, consequence, category), got {row!r}"
            ) from None
        _check_level("probability", p)
        _check_level("consequence", c)
        try:
            category = RiskCategory(raw)
        except ValueError:
            allowed = ", ".join(v.value for v in RiskCategory)
            raise ValueError(
                f"cell ({p}, {c}): unknown risk category {raw!r} (allowed: {allowed})"
            ) from None
        if (p, c) in found:
            # Even a repeat with the same category is rejected: a duplicated row in the
            # configuration is a data error the operator should see.
            raise ValueError(f"cell ({p}, {c}) is given more than once")
        found[(p, c)] = category
    missing = [(p, c) for p in LEVELS for c in LEVELS if (p, c) not in found]
    if missing:
        listed = ", ".join(f"({p}, {c})" for p, c in missing)
        raise ValueError(
            f"risk matrix must define all {_CELL_COUNT} cells; {len(missing)} missing: {listed}"
        )
    return tuple(found[(p, c)] for p in LEVELS for c in LEVELS)


DEFAULT_RISK_MATRIX: RiskMatrix = RiskMatrix.from_score_bands(default_category_for_score)
"""Banded by p x c per Dethlefs & Chastain (SPE-142854-PA)."""


@dataclass(frozen=True)
class RiskOutcome:
    score: int
    """0..100: p x c scaled so that 25 -> 100 (in practice 4..100, in steps of 4)."""
    category: RiskCategory


def risk(
    probability: int, consequence: int, matrix: RiskMatrix = DEFAULT_RISK_MATRIX
) -> RiskOutcome:
    """Score and category of a (probability, consequence) pair.

    The category comes from the configured matrix cell, not from the score, so a custom
    matrix can rate two cells with the same product differently.
    """
    p = _check_level("probability", probability)
    c = _check_level("consequence", consequence)
    score = round(p * c * 100 / _CELL_COUNT)
    return RiskOutcome(score=score, category=matrix.category(p, c))


# Consequence of a loss of containment by well type, 1..5 (WIMS defaults, configurable).
# Why these: gas is compressible, buoyant and flammable, so it reaches surface fast and a
# leak releases stored energy (producer and injector alike: an injector holds gas at high
# pressure). Oil is flammable and a spill is an environmental event, but it is less mobile
# than gas. A water injector is pressured but carries no hydrocarbon; its harm is mostly
# out-of-zone injection and crossflow. An observation well usually does not flow at all.
# The specification's coarser types say nothing of the fluid: a producer or a well on test
# flows hydrocarbon (oil's 3, until the engineer says gas); an injector's fluid is unknown,
# so it takes the middle of water (2) and gas (4).
DEFAULT_CONSEQUENCE: Mapping[WellType, int] = MappingProxyType(
    {
        WellType.producer: 3,
        WellType.injector: 3,
        WellType.testing: 3,
        WellType.gas_producer: 4,
        WellType.gas_injector: 4,
        WellType.oil_producer: 3,
        WellType.water_injector: 2,
        WellType.observation: 1,
    }
)


def default_consequence(well_type: WellType | str) -> int:
    """Default consequence level (1..5) of a well type; ValueError for an unknown type."""
    return DEFAULT_CONSEQUENCE[WellType(well_type)]
