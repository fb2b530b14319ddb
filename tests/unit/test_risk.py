"""Risk matrix: default banding, custom matrices, validation, score bounds."""

from __future__ import annotations

import pytest

from shared.contracts.enums import RiskCategory, WellType
from shared.domain.risk import (
    DEFAULT_RISK_MATRIX,
    RiskMatrix,
    RiskOutcome,
    default_consequence,
    risk,
)

# The specification's four categories; HIGH and EXTREME are the bands Dethlefs & Chastain
# call significant and high.
LOW, MED, HIGH, EXTREME = (
    RiskCategory.low,
    RiskCategory.medium,
    RiskCategory.high,
    RiskCategory.extreme,
)
LEVELS = range(1, 6)

# The default matrix written out by hand (rows p = 1..5, columns c = 1..5), so a banding
# bug cannot hide behind the same formula in test and code.
EXPECTED_DEFAULT = [
    [LOW, LOW, LOW, LOW, MED],  # p=1: 1 2 3 4 5
    [LOW, LOW, MED, MED, MED],  # p=2: 2 4 6 8 10
    [LOW, MED, MED, HIGH, HIGH],  # p=3: 3 6 9 12 15
    [LOW, MED, HIGH, HIGH, EXTREME],  # p=4: 4 8 12 16 20
    [MED, MED, HIGH, EXTREME, EXTREME],  # p=5: 5 10 15 20 25
]


def all_cells(category: RiskCategory = LOW) -> list[tuple[int, int, RiskCategory]]:
    return [(p, c, category) for p in LEVELS for c in LEVELS]


@pytest.mark.parametrize(("p", "c"), [(p, c) for p in LEVELS for c in LEVELS])
def test_default_banding(p: int, c: int) -> None:
    assert DEFAULT_RISK_MATRIX[(p, c)] is EXPECTED_DEFAULT[p - 1][c - 1]
    assert risk(p, c, DEFAULT_RISK_MATRIX).category is EXPECTED_DEFAULT[p - 1][c - 1]


def test_score_scaling_and_bounds() -> None:
    assert risk(1, 1) == RiskOutcome(4, LOW)
    assert risk(5, 5) == RiskOutcome(100, EXTREME)
    assert risk(3, 4).score == 48
    scores = [risk(p, c).score for p in LEVELS for c in LEVELS]
    assert all(0 <= s <= 100 for s in scores)
    assert all(isinstance(s, int) for s in scores)


@pytest.mark.parametrize(("p", "c"), [(0, 3), (6, 3), (3, 0), (3, 6), (True, 2), (2.0, 2)])
def test_risk_rejects_out_of_range(p, c) -> None:
    with pytest.raises(ValueError):
        risk(p, c)


def test_custom_matrix_changes_category() -> None:
    cells = [(p, c, DEFAULT_RISK_MATRIX[(p, c)]) for p in LEVELS for c in LEVELS]
    cells = [(p, c, EXTREME if (p, c) == (1, 5) else cat) for p, c, cat in cells]
    custom = RiskMatrix.from_cells(cells)
    assert risk(1, 5, DEFAULT_RISK_MATRIX).category is MED
    assert risk(1, 5, custom) == RiskOutcome(20, EXTREME)  # same score, category from the cell
    assert risk(5, 1, custom).category is MED  # p x c equal, cell differs
    assert custom != DEFAULT_RISK_MATRIX


def test_from_cells_accepts_strings_and_round_trips() -> None:
    m = RiskMatrix.from_cells([(p, c, "extreme") for p in LEVELS for c in LEVELS])
    assert m[(2, 3)] is EXTREME
    assert RiskMatrix.from_cells(DEFAULT_RISK_MATRIX.rows()) == DEFAULT_RISK_MATRIX
    assert hash(RiskMatrix.from_cells(DEFAULT_RISK_MATRIX.rows())) == hash(DEFAULT_RISK_MATRIX)


def test_matrix_is_a_complete_immutable_mapping() -> None:
    assert len(DEFAULT_RISK_MATRIX) == 25
    assert set(DEFAULT_RISK_MATRIX) == {(p, c) for p in LEVELS for c in LEVELS}
    assert (6, 1) not in DEFAULT_RISK_MATRIX
    with pytest.raises(KeyError):
        DEFAULT_RISK_MATRIX[(0, 1)]
    with pytest.raises(TypeError):
        DEFAULT_RISK_MATRIX[(1, 1)] = HIGH  # type: ignore[index]
    with pytest.raises(AttributeError):
        DEFAULT_RISK_MATRIX._cells = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (all_cells()[:-1], r"1 missing: \(5, 5\)"),
        ([], "25 missing"),
        ([*all_cells(), (1, 1, LOW)], r"\(1, 1\) is given more than once"),
        ([*all_cells()[1:], (1, 1, "catastrophic")], "unknown risk category"),
        ([*all_cells(), (6, 1, LOW)], "probability must be an integer 1..5"),
        ([*all_cells(), (1, 0, LOW)], "consequence must be an integer 1..5"),
        ([*all_cells()[1:], (1, 1)], r"\(probability, consequence, category\)"),
    ],
)
def test_invalid_matrices_rejected(cells, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RiskMatrix.from_cells(cells)


@pytest.mark.parametrize(
    ("well_type", "expected"),
    [
        (WellType.gas_producer, 4),
        (WellType.gas_injector, 4),
        (WellType.oil_producer, 3),
        (WellType.water_injector, 2),
        (WellType.observation, 1),
        ("oil_producer", 3),
        (WellType.producer, 3),
        (WellType.injector, 3),
        (WellType.testing, 3),
    ],
)
def test_default_consequence(well_type, expected: int) -> None:
    assert default_consequence(well_type) == expected


def test_default_consequence_covers_every_well_type() -> None:
    assert all(1 <= default_consequence(t) <= 5 for t in WellType)
    with pytest.raises(ValueError):
        default_consequence("geothermal")
