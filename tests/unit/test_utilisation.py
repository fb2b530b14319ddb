"""Utilisation, thresholds and the hysteresis of the alert level, scalar and vectorised."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.contracts.enums import UtilisationLevel
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_BY_CODE,
    LEVEL_CODES,
    Thresholds,
    level_for,
    levels_for,
    levels_for_segments,
    levels_for_series,
    next_level,
    utilisation,
    utilisation_array,
)

U = UtilisationLevel
T = DEFAULT_THRESHOLDS


def fold(previous: UtilisationLevel, utils: list[float], th: Thresholds) -> list[UtilisationLevel]:
    """The reference: next_level applied reading by reading."""
    out = []
    level = previous
    for u in utils:
        level = next_level(level, None if math.isnan(u) else u, th)
        out.append(level)
    return out


def decode(codes: np.ndarray) -> list[UtilisationLevel]:
    return [LEVEL_BY_CODE[int(c)] for c in codes]


# --------------------------------------------------------------------------- utilisation


def test_utilisation_is_pressure_over_maasp() -> None:
    assert utilisation(80.0, 100.0) == pytest.approx(0.8)
    assert utilisation(0.0, 100.0) == 0.0  # zero is a reading too
    assert utilisation(-1.0, 100.0) == pytest.approx(-0.01)


def test_utilisation_unknown_without_maasp() -> None:
    assert utilisation(10.0, None) is None
    assert utilisation(10.0, math.nan) is None
    assert utilisation(math.nan, 100.0) is None


def test_zero_maasp_holds_nothing() -> None:
    assert utilisation(0.1, 0.0) == math.inf
    assert utilisation(0.0, 0.0) == 0.0
    assert utilisation(-0.5, 0.0) == 0.0
    assert next_level(U.normal, utilisation(0.1, 0.0), T) is U.exceeded


def test_utilisation_array_matches_scalar() -> None:
    p = np.array([80.0, 0.0, 5.0, 0.0, 3.0, math.nan, 50.0])
    m = np.array([100.0, 100.0, 0.0, 0.0, math.nan, 100.0, 200.0])
    out = utilisation_array(p, m)
    expected = [
        utilisation(float(a), None if math.isnan(b) else float(b))
        for a, b in zip(p, m, strict=True)
    ]
    for got, want in zip(out.tolist(), expected, strict=True):
        if want is None:
            assert math.isnan(got)
        else:
            assert got == want
    # a scalar MAASP broadcasts
    assert utilisation_array(np.array([10.0, 20.0]), np.float64(40.0)).tolist() == [0.25, 0.5]


# --------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warning": 0.0},
        {"warning": 1.0},
        {"warning": 1.2},
        {"exceeded": 0.8},
        {"clear_band": -0.01},
        {"clear_band": 0.8},
        {"warning": math.nan},
        {"clear_band": math.inf},
    ],
)
def test_bad_thresholds_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Thresholds"):
        Thresholds(**kwargs)


def test_default_thresholds() -> None:
    assert (T.warning, T.exceeded, T.clear_band) == (0.8, 1.0, 0.05)


def test_level_codes_are_a_bijection_ordered_by_severity() -> None:
    assert set(LEVEL_CODES) == set(UtilisationLevel)
    assert {LEVEL_BY_CODE[c] for c in LEVEL_CODES.values()} == set(UtilisationLevel)
    assert [LEVEL_CODES[lvl] for lvl in (U.unknown, U.normal, U.warning, U.exceeded)] == [
        0,
        1,
        2,
        3,
    ]


# --------------------------------------------------------------------------- next_level


@pytest.mark.parametrize(
    ("previous", "util", "expected"),
    [
        # raising
        (U.normal, 0.79, U.normal),
        (U.normal, 0.8, U.warning),
        (U.normal, 0.99, U.warning),
        (U.normal, 1.0, U.exceeded),
        (U.warning, 1.0, U.exceeded),
        (U.normal, math.inf, U.exceeded),
        # clearing exceeded: lands on what the util still holds
        (U.exceeded, 0.96, U.exceeded),
        (U.exceeded, 0.95, U.exceeded),  # not below 1.0 - 0.05
        (U.exceeded, 0.9, U.warning),
        (U.exceeded, 0.77, U.warning),  # warning's own band is not cleared (0.77 >= 0.75)
        (U.exceeded, 0.74, U.normal),
        (U.exceeded, 0.5, U.normal),
        # clearing warning
        (U.warning, 0.77, U.warning),
        (U.warning, 0.75, U.warning),  # not below 0.8 - 0.05
        (U.warning, 0.7499, U.normal),
        (U.warning, 0.74, U.normal),
        (U.warning, -0.1, U.normal),
        # unknown
        (U.normal, None, U.unknown),
        (U.exceeded, math.nan, U.unknown),
        (U.unknown, 0.77, U.normal),  # from unknown as from normal: no band to hold
        (U.unknown, 0.85, U.warning),
        (U.unknown, 1.2, U.exceeded),
    ],
)
def test_next_level(
    previous: UtilisationLevel, util: float | None, expected: UtilisationLevel
) -> None:
    assert next_level(previous, util, T) is expected
    codes = levels_for_series(previous, np.array([math.nan if util is None else util]), T)
    assert decode(codes) == [expected]


def test_clear_band_boundaries_follow_configured_thresholds() -> None:
    th = Thresholds(warning=0.6, exceeded=0.9, clear_band=0.1)
    w_clear = th.warning - th.clear_band
    e_clear = th.exceeded - th.clear_band
    assert next_level(U.warning, w_clear, th) is U.warning
    assert next_level(U.warning, math.nextafter(w_clear, 0.0), th) is U.normal
    assert next_level(U.exceeded, e_clear, th) is U.exceeded
    assert next_level(U.exceeded, math.nextafter(e_clear, 0.0), th) is U.warning
    assert next_level(U.normal, math.nextafter(th.warning, 0.0), th) is U.normal
    assert next_level(U.normal, th.warning, th) is U.warning


def test_zero_band_has_no_hysteresis() -> None:
    th = Thresholds(clear_band=0.0)
    assert next_level(U.exceeded, 0.9999, th) is U.warning
    assert next_level(U.warning, 0.7999, th) is U.normal


def test_level_for_is_without_history() -> None:
    assert level_for(0.77) is U.normal
    assert level_for(0.8) is U.warning
    assert level_for(None) is U.unknown


# --------------------------------------------------------------------------- series


def test_hovering_at_the_limit_raises_exceeded_once() -> None:
    rng = np.random.default_rng(7)
    ramp = np.linspace(0.5, 0.99, 60)
    hover = 1.0 + rng.uniform(-0.04, 0.04, 2000)  # crosses 100 % hundreds of times
    utils = np.concatenate([ramp, hover])
    assert np.sum(hover >= 1.0) > 100 and np.sum(hover < 1.0) > 100
    levels = fold(U.normal, utils.tolist(), T)
    raised = [i for i in range(1, len(levels)) if levels[i] != levels[i - 1]]
    assert [levels[i] for i in raised] == [U.warning, U.exceeded]
    codes = levels_for_series(U.normal, utils, T)
    assert decode(codes) == levels
    # ... and it clears once it falls clearly away
    tail = levels_for_series(U.exceeded, np.array([0.96, 0.94, 0.80, 0.76, 0.74]), T)
    assert decode(tail) == [U.exceeded, U.warning, U.warning, U.warning, U.normal]


def test_series_starts_from_previous_level() -> None:
    utils = np.array([0.97, 0.9, 0.8])
    assert decode(levels_for_series(U.exceeded, utils, T)) == [U.exceeded, U.warning, U.warning]
    assert decode(levels_for_series(U.normal, utils, T)) == [U.warning, U.warning, U.warning]
    assert decode(levels_for_series(U.unknown, np.array([0.78]), T)) == [U.normal]


def test_nan_is_unknown_and_resets_the_latches() -> None:
    # without the gap 0.97 would hold exceeded and 0.78 would hold warning
    for utils, expected in (
        ([1.1, math.nan, 0.97], [U.exceeded, U.unknown, U.warning]),
        ([0.85, math.nan, 0.78], [U.warning, U.unknown, U.normal]),
    ):
        assert decode(levels_for_series(U.normal, np.array(utils), T)) == expected
        assert fold(U.normal, utils, T) == expected


def test_empty_series() -> None:
    out = levels_for_series(U.warning, np.array([]), T)
    assert out.dtype == np.int8 and out.size == 0


# Values on and next to every boundary, so the property test exercises the edges, not only
# the open intervals between them.
_EDGES = [
    x
    for b in (0.75, 0.8, 0.95, 1.0, 0.45, 0.5, 0.6)
    for x in (b, math.nextafter(b, 0.0), math.nextafter(b, 2.0))
]
util_st = st.one_of(
    st.floats(-0.2, 1.5),
    st.sampled_from([*_EDGES, math.nan, math.inf, 0.0]),
)
thresholds_st = st.sampled_from(
    [
        T,
        Thresholds(0.5, 0.6, 0.15),  # band wider than the gap between thresholds
        Thresholds(0.8, 1.0, 0.0),
        Thresholds(0.6, 0.95, 0.45),
    ]
)


@given(st.sampled_from(list(UtilisationLevel)), st.lists(util_st, max_size=200), thresholds_st)
def test_batch_levels_equal_sequential_next_level(
    previous: UtilisationLevel, utils: list[float], th: Thresholds
) -> None:
    codes = levels_for_series(previous, np.array(utils, dtype=np.float64), th)
    assert codes.dtype == np.int8
    assert decode(codes) == fold(previous, utils, th)


@given(st.lists(util_st, min_size=2, max_size=100), st.integers(0, 100))
def test_series_can_be_split_anywhere(utils: list[float], cut: int) -> None:
    cut = min(cut, len(utils))
    whole = levels_for_series(U.normal, np.array(utils), T)
    first = levels_for_series(U.normal, np.array(utils[:cut]), T)
    carry = LEVEL_BY_CODE[int(first[-1])] if cut else U.normal
    second = levels_for_series(carry, np.array(utils[cut:]), T)
    assert np.concatenate([first, second]).tolist() == whole.tolist()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(UtilisationLevel)),
            st.lists(util_st, min_size=1, max_size=40),
            thresholds_st,
        ),
        max_size=12,
    )
)
def test_many_annuli_at_once_equal_the_rule_folded_per_annulus(
    series: list[tuple[UtilisationLevel, list[float], Thresholds]],
) -> None:
    """The stream worker's whole-batch form: each annulus' series, its own thresholds and
    level before it, judged together as the rule judges each alone."""
    utils = [u for _, us, _ in series for u in us]
    lens = [len(us) for _, us, _ in series]
    firsts = np.cumsum([0, *lens[:-1]]).astype(np.intp) if series else np.zeros(0, np.intp)
    per_reading = [th for _, us, th in series for _ in us]
    codes = levels_for_segments(
        np.array(utils, dtype=np.float64),
        firsts,
        np.array([LEVEL_CODES[p] for p, _, _ in series], dtype=np.int8),
        np.array([th.warning for th in per_reading]),
        np.array([th.exceeded for th in per_reading]),
        np.array([th.clear_band for th in per_reading]),
    )
    assert codes.dtype == np.int8
    assert decode(codes) == [lvl for p, us, th in series for lvl in fold(p, us, th)]


def test_30000_readings_well_under_10_ms() -> None:
    rng = np.random.default_rng(3)
    utils = 0.9 + 0.15 * np.sin(np.linspace(0, 60, 30_000)) + rng.normal(0, 0.02, 30_000)
    utils[rng.random(30_000) < 0.01] = np.nan
    levels_for_series(U.normal, utils, T)  # warm up
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        levels_for_series(U.normal, utils, T)
        best = min(best, time.perf_counter() - start)
    assert best < 0.005, f"{best * 1e3:.2f} ms"


@given(st.lists(st.tuples(util_st, thresholds_st), max_size=100))
def test_levels_for_is_level_for_on_each_annulus(annuli: list[tuple[float, Thresholds]]) -> None:
    """The fleet's vectorised levels: each annulus judged alone, against its own thresholds,
    exactly as level_for judges it (NaN is unknown, inf exceeded)."""
    utils = np.array([u for u, _ in annuli], dtype=np.float64)
    codes = levels_for(
        utils,
        np.array([t.warning for _, t in annuli]),
        np.array([t.exceeded for _, t in annuli]),
    )
    expected = [level_for(None if math.isnan(u) else u, t) for u, t in annuli]
    assert [LEVEL_BY_CODE[int(c)] for c in codes] == expected
