"""The late rule: a reading not after the newest one seen for its annulus is late."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.ordering import all_in_order, in_order, in_order_array

# Few distinct times, so that ties and going back in time are common.
times = st.lists(st.integers(0, 12).map(float), max_size=30)
newest_st = st.one_of(st.just(-math.inf), st.integers(0, 12).map(float))


def test_a_replay_a_duplicate_and_an_older_reading_are_late() -> None:
    kept, newest = in_order([10.0, 11.0, 11.0, 9.0, 12.0], newest=10.0)
    assert kept == [1, 4]
    assert newest == 12.0


@given(times, newest_st)
def test_the_vectorised_form_keeps_what_the_rule_keeps(ts: list[float], newest: float) -> None:
    kept, after = in_order(ts, newest)
    mask, after_array = in_order_array(np.array(ts, dtype=np.float64), newest)
    assert np.flatnonzero(mask).tolist() == kept
    assert after_array == after


@given(st.lists(st.tuples(times, newest_st), max_size=10))
def test_many_annuli_at_once_say_which_have_no_late_reading(
    annuli: list[tuple[list[float], float]],
) -> None:
    lens = [len(ts) for ts, _ in annuli]
    ends = np.cumsum(lens).astype(np.intp)
    starts = ends - np.array(lens, dtype=np.intp)
    flat = np.array([t for ts, _ in annuli for t in ts], dtype=np.float64)
    newest = np.array([n for _, n in annuli], dtype=np.float64)
    got = all_in_order(flat, starts, ends, newest)
    assert got.tolist() == [len(in_order(ts, n)[0]) == len(ts) for ts, n in annuli]
