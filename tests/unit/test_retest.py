"""30 CFR 250.521 re-test: a rise of more than 13.8 bar above the last diagnostic test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.retest import RETEST_RISE_BAR, retest_due

T0 = 1_700_000_000.0
TS = T0 + np.arange(1, 241) * 60.0  # 4 h of 1-minute readings after the test at T0


def series(level: float, rise_at_min: int, rise_to: float) -> np.ndarray:
    p = np.full(TS.size, level)
    p[rise_at_min:] = rise_to
    return p


def test_a_rise_of_more_than_200_psig_held_half_an_hour_makes_the_test_due() -> None:
    due = retest_due(T0, 20.0, TS, series(20.0, 60, 34.0))
    assert due is not None
    assert due.above_since == TS[60]
    assert due.ts == TS[90]  # 30 min later: the default sustain
    assert due.rise_bar == pytest.approx(14.0) and due.limit_bar == pytest.approx(33.8)


def test_a_rise_of_exactly_200_psig_is_not_more_than_it() -> None:
    assert retest_due(T0, 20.0, TS, series(20.0, 60, 20.0 + RETEST_RISE_BAR)) is None


def test_a_short_excursion_does_not_count() -> None:
    p = series(20.0, 60, 40.0)
    p[80:] = 25.0  # 20 minutes above, then back
    assert retest_due(T0, 20.0, TS, p) is None
    assert retest_due(T0, 20.0, TS, p, sustain_s=0.0).ts == TS[60]


def test_readings_before_the_test_are_not_judged() -> None:
    before = T0 - np.arange(1, 100) * 60.0
    assert retest_due(T0, 20.0, before, np.full(before.size, 60.0)) is None


def test_a_dip_restarts_the_sustain_time() -> None:
    p = series(20.0, 10, 40.0)
    p[30] = 30.0  # one reading under the limit
    due = retest_due(T0, 20.0, TS, p)
    assert due is not None and due.above_since == TS[31] and due.ts == TS[61]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rise_bar"):
        retest_due(T0, 20.0, TS, TS * 0, rise_bar=0)
    with pytest.raises(ValueError, match="sustain_s"):
        retest_due(T0, 20.0, TS, TS * 0, sustain_s=-1)


@given(
    st.lists(st.floats(0.0, 100.0), min_size=1, max_size=60),
    st.floats(0.0, 50.0),
    st.floats(0.0, 3600.0),
)
def test_due_only_when_every_reading_of_the_held_run_is_above(
    pressures: list[float], test_p: float, sustain: float
) -> None:
    t = T0 + 60.0 * np.arange(1, len(pressures) + 1)
    p = np.array(pressures)
    due = retest_due(T0, test_p, t, p, sustain_s=sustain)
    limit = test_p + RETEST_RISE_BAR
    if due is None:
        # No reading has a run above the limit lasting the sustain time behind it.
        for k in range(len(p)):
            run = [j for j in range(k + 1) if all(p[j : k + 1] > limit)]
            assert not run or t[k] - t[min(run)] < sustain
    else:
        held = (t >= due.above_since) & (t <= due.ts)
        assert (p[held] > limit).all() and due.ts - due.above_since >= sustain
