"""Annulus communication on synthetic 1-minute series of two annuli of one well (event time):
communicating, independent and thermal co-movement, like the SAP detector's tests."""

from __future__ import annotations

import numpy as np
import pytest

from shared.domain.communication import (
    DEFAULT_COMMUNICATION_PARAMS,
    CommunicationParams,
    detect_communication,
    source_steps,
)

T0 = 1_700_000_000.0
STEP_S = 60.0
HOURS = 10
N = HOURS * 60
TS = T0 + np.arange(N) * STEP_S
H = np.arange(N) * STEP_S / 3600.0
BLEED_AT_H = 4.0


def noise(seed: int, sigma: float = 0.2) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sigma, N)


def bled_a(level: float = 40.0, to: float = 2.0, minutes: float = 10.0) -> np.ndarray:
    """Steady ``level``, bled to ``to`` over ``minutes`` at 4 h, then held there."""
    frac = np.clip((H - BLEED_AT_H) * 60.0 / minutes, 0.0, 1.0)
    return level + (to - level) * frac


def lagged(x: np.ndarray, tau_min: float) -> np.ndarray:
    """First-order lag (a small leak path passes pressure slowly)."""
    out = np.empty_like(x)
    out[0] = x[0]
    a = 1.0 - np.exp(-STEP_S / (tau_min * 60.0))
    for i in range(1, x.size):
        out[i] = out[i - 1] + a * (x[i] - out[i - 1])
    return out


def judge(src: np.ndarray, resp: np.ndarray, params=DEFAULT_COMMUNICATION_PARAMS):
    return detect_communication(TS, src, TS, resp, params)


def test_b_answering_a_bleed_of_a_is_communication() -> None:
    a = bled_a()
    b = 20.0 + 0.25 * (lagged(a, 15.0) - 40.0)  # B loses a quarter of A's drop, lagged
    found = judge(a + noise(1), b + noise(2))
    assert len(found) == 1
    c = found[0]
    assert c.direction == "bleed-down"
    assert c.step_bar < -30.0  # A went from 40 to 2 bar
    assert c.response_bar < -5.0  # B followed down
    assert T0 + BLEED_AT_H * 3600 <= c.step_end <= T0 + (BLEED_AT_H + 0.5) * 3600


def test_a_build_up_answered_is_communication_too() -> None:
    a = 5.0 + np.clip((H - BLEED_AT_H) * 6.0, 0.0, 1.0) * 30.0  # pressured up 30 bar in 10 min
    b = 10.0 + 0.2 * (lagged(a, 20.0) - 5.0)
    found = judge(a + noise(3), b + noise(4))
    assert [c.direction for c in found] == ["build-up"]
    assert found[0].response_bar > 3.0


def test_an_independent_annulus_is_not_flagged() -> None:
    a = bled_a()
    b = np.full(N, 20.0)
    assert judge(a + noise(5), b + noise(6)) == []


def test_thermal_co_movement_is_not_flagged() -> None:
    """Both annuli warm with the well after a start-up at 3 h (temperature +25 degC with a 2 h
    time constant), the A annulus by 1.2 bar/degC and the B annulus by 0.6: they move
    together, but neither steps."""
    temp_rise = 25.0 * (1.0 - np.exp(-np.clip(H - 3.0, 0.0, None) / 2.0))
    a = 30.0 + 1.2 * temp_rise
    b = 15.0 + 0.6 * temp_rise
    assert judge(a + noise(7), b + noise(8)) == []
    assert judge(b + noise(9), a + noise(10)) == []


def test_thermal_shut_in_cooling_is_not_flagged() -> None:
    temp_fall = 30.0 * (1.0 - np.exp(-np.clip(H - 2.0, 0.0, None) / 1.5))
    a = 50.0 - 1.0 * temp_fall
    b = 25.0 - 0.5 * temp_fall
    assert judge(a + noise(11), b + noise(12)) == []


def test_a_bleed_during_an_independent_thermal_drift_is_not_flagged() -> None:
    """B drifts up with temperature (its own course, fitted before the step) while A is bled:
    B's drift continues as before, so it did not answer."""
    a = bled_a()
    b = 15.0 + 2.0 * H  # 2 bar/h thermal drift through the whole record
    assert judge(a + noise(13), b + noise(14)) == []


def test_a_bleed_answered_during_a_thermal_drift_is_flagged() -> None:
    a = bled_a()
    b = 15.0 + 2.0 * H + 0.25 * (lagged(a, 15.0) - 40.0)
    found = judge(a + noise(15), b + noise(16))
    assert len(found) == 1 and found[0].response_bar < -5.0


def test_a_step_is_judged_only_once_the_response_window_is_covered() -> None:
    a = bled_a()
    b = 20.0 + 0.25 * (lagged(a, 15.0) - 40.0)
    end = T0 + (BLEED_AT_H + 0.5) * 3600  # half an hour after the bleed: too early
    early = TS <= end
    assert detect_communication(TS[early], a[early], TS[early], b[early]) == []
    assert len(detect_communication(TS, a, TS, b)) == 1


def test_small_responses_are_below_the_threshold() -> None:
    a = bled_a()
    b = 20.0 + 0.02 * (lagged(a, 15.0) - 40.0)  # 0.76 bar: under 1 bar and 10 % of the step
    assert judge(a + noise(17, 0.05), b + noise(18, 0.05)) == []


@pytest.mark.parametrize("seed", range(20))
def test_two_noisy_steady_annuli_never_communicate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = 30.0 + rng.normal(0.0, 0.5, N)
    b = 10.0 + rng.normal(0.0, 0.5, N)
    assert judge(a, b) == [] and judge(b, a) == []


def test_source_steps_find_one_step_per_bleed() -> None:
    steps = source_steps(TS, bled_a() + noise(19))
    assert len(steps) == 1 and steps[0][1] < -30.0


def test_unordered_and_non_finite_input_gives_the_same_answer() -> None:
    a = bled_a() + noise(20)
    b = 20.0 + 0.25 * (lagged(bled_a(), 15.0) - 40.0) + noise(21)
    order = np.random.default_rng(0).permutation(N)
    a_nan = a.copy()
    a_nan[::50] = np.nan
    expected = judge(a, b)
    assert detect_communication(TS[order], a[order], TS[order], b[order]) == expected
    assert len(judge(a_nan, b)) == 1


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="step_min_bar"):
        CommunicationParams(step_min_bar=0)
    with pytest.raises(ValueError, match="min_points"):
        CommunicationParams(min_points=1)
