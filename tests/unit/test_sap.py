"""SAP and diagnostic-test-due detection on synthetic 1-minute series (event time)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from shared.domain.sap import (
    DEFAULT_SAP_PARAMS,
    SapFinding,
    SapParams,
    SapState,
    detect_sap_series,
    sap_step,
)

T0 = 1_700_000_000.0  # event time origin, epoch seconds
STEP_S = 60.0
DAYS = 2
N = DAYS * 24 * 60
HOURS = np.arange(N) * STEP_S / 3600.0
TS = T0 + HOURS * 3600.0

BLEED_AT_H = 10.0
BLEED_MIN = 20.0
HOLD_MIN = 30.0


def sap_shape(
    level: float = 40.0, recover_to: float = 32.0, recover_tau_h: float = 6.0
) -> np.ndarray:
    """Steady ``level``, bled to 1 bar over 20 min at 10 h, held 30 min, then an exponential
    build-up towards ``recover_to`` with time constant ``recover_tau_h``."""
    p = np.full(N, level)
    end_bleed = BLEED_AT_H + BLEED_MIN / 60
    end_hold = end_bleed + HOLD_MIN / 60
    bleeding = (HOURS >= BLEED_AT_H) & (HOURS < end_bleed)
    p[bleeding] = level - (level - 1.0) * (HOURS[bleeding] - BLEED_AT_H) / (BLEED_MIN / 60)
    p[(HOURS >= end_bleed) & (HOURS < end_hold)] = 1.0
    rising = HOURS >= end_hold
    p[rising] = 1.0 + (recover_to - 1.0) * (1 - np.exp(-(HOURS[rising] - end_hold) / recover_tau_h))
    return p


def noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return clean + np.random.default_rng(seed).normal(0.0, sigma, clean.shape)


def steady_temperature(seed: int) -> np.ndarray:
    return 50.0 + np.random.default_rng(seed + 1000).normal(0.0, 0.3, N)


def of_kind(findings: list[SapFinding], kind: str) -> list[SapFinding]:
    return [f for f in findings if f.kind == kind]


def sap_found(findings: list[SapFinding]) -> list[SapFinding]:
    return of_kind(findings, "sap_detected")


def diag_found(findings: list[SapFinding]) -> list[SapFinding]:
    return of_kind(findings, "diagnostic_test_due")


# --------------------------------------------------------------------------- (a) SAP


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleed_then_buildup_at_steady_temperature_is_sap_once(seed: int) -> None:
    clean = sap_shape()
    assert clean.max() == 40.0 and clean[-1] > 30.0
    p = noisy(clean, 0.3, seed)
    found = sap_found(detect_sap_series(TS, p, steady_temperature(seed)))
    assert len(found) == 1
    f = found[0]
    bleed_start = T0 + BLEED_AT_H * 3600
    # the episode starts where the drop began (smoothing lags a few minutes)
    assert bleed_start <= f.episode_start <= bleed_start + 20 * 60
    assert f.pre_bleed_bar == pytest.approx(40.0, abs=1.0)
    assert f.bleed_low_bar is not None and f.bleed_low_bar < 3.0
    assert f.buildup_bar is not None and f.buildup_bar >= 0.5 * f.pre_bleed_bar
    # judged when the build-up reached half the pre-bleed level: ~5.7 h into the recovery
    hours_after_bleed = (f.ts - bleed_start) / 3600
    assert 5.0 < hours_after_bleed < 8.0
    assert f.details["thermal_test"] == "rise not explained by temperature"
    assert abs(f.details["temperature_correlation"]) < 0.5
    json.dumps(f.to_dict())  # the finding is JSON-able


# --------------------------------------------------------------------------- (b) thermal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_buildup_that_tracks_temperature_is_not_sap(seed: int) -> None:
    clean = sap_shape()
    # a shut-in / start-up: temperature falls and rises with the pressure (about 12 degC
    # over the build-up to 20 bar)
    temperature = 30.0 + 0.6 * (clean - 1.0) + np.random.default_rng(seed).normal(0.0, 0.3, N)
    p = noisy(clean, 0.3, seed + 50)
    assert sap_found(detect_sap_series(TS, p, temperature)) == []
    # the same pressure at steady temperature is SAP: temperature made the difference
    assert len(sap_found(detect_sap_series(TS, p, steady_temperature(seed)))) == 1


def test_correlated_but_small_temperature_change_does_not_explain_the_rise() -> None:
    clean = sap_shape()
    temperature = 30.0 + 0.1 * (clean - 1.0)  # perfectly correlated, but only ~2 degC
    found = sap_found(detect_sap_series(TS, noisy(clean, 0.3, 4), temperature))
    assert len(found) == 1
    assert found[0].details["temperature_correlation"] > 0.9
    assert found[0].details["temperature_change_c"] < 5.0


def test_without_temperature_the_buildup_cannot_be_cleared() -> None:
    found = sap_found(detect_sap_series(TS, noisy(sap_shape(), 0.3, 5)))
    assert len(found) == 1
    assert found[0].details["thermal_test"] == "too few temperature readings to test"


# --------------------------------------------------------------------------- (c) no build-up


@pytest.mark.parametrize(
    ("recover_to", "recover_tau_h"),
    [
        (1.0, 6.0),  # bled down, stays down
        (12.0, 4.0),  # partial build-up: 30 % of the pre-bleed level, target is 50 %
        (60.0, 80.0),  # reaches 20 bar only ~31 h after the bleed: outside the 24 h window
    ],
)
def test_bleed_without_buildup_in_window_is_not_sap(
    recover_to: float, recover_tau_h: float
) -> None:
    clean = sap_shape(recover_to=recover_to, recover_tau_h=recover_tau_h)
    p = noisy(clean, 0.3, 9)
    assert sap_found(detect_sap_series(TS, p, steady_temperature(9))) == []


def test_slow_decline_is_not_a_bleed() -> None:
    # 40 -> 1 bar over 8 h (a leak-off or cooling, not a bleed), then back up
    clean = np.interp(HOURS, [0, 10, 18, 30, 48], [40, 40, 1, 35, 35])
    assert sap_found(detect_sap_series(TS, noisy(clean, 0.3, 3), steady_temperature(3))) == []


@pytest.mark.parametrize("decline_h", [4.0, 5.0, 8.0])
def test_linear_decline_slower_than_bleed_max_duration_is_not_a_bleed(decline_h: float) -> None:
    # 40 -> 1 bar in 4 h takes ~2.5 h from 90 % (36 bar) to 30 % (12 bar): longer than 2 h
    clean = np.interp(HOURS, [0, 10, 10 + decline_h, 12 + decline_h, 48], [40, 40, 1, 1, 38])
    assert sap_found(detect_sap_series(TS, noisy(clean, 0.3, 4), steady_temperature(4))) == []


def test_exponential_decay_is_not_a_bleed() -> None:
    # a leak-off with a 3 h time constant, then a recovery
    clean = np.where(HOURS < 10, 40.0, 40.0 * np.exp(-(HOURS - 10) / 3.0))
    clean = np.where(HOURS > 24, np.interp(HOURS, [24, 36], [clean[HOURS <= 24][-1], 35]), clean)
    assert sap_found(detect_sap_series(TS, noisy(clean, 0.3, 5), steady_temperature(5))) == []


@pytest.mark.parametrize("bleed_h", [0.1, 1.0, 1.5])
def test_slower_bleed_within_bleed_max_duration_is_still_a_bleed(bleed_h: float) -> None:
    clean = np.interp(HOURS, [0, 10, 10 + bleed_h, 11 + bleed_h, 20, 48], [40, 40, 1, 1, 30, 32])
    found = sap_found(detect_sap_series(TS, noisy(clean, 0.3, 6), steady_temperature(6)))
    assert len(found) == 1
    assert T0 + 10 * 3600 <= found[0].episode_start <= T0 + (10 + bleed_h) * 3600


def test_low_pressure_annulus_is_not_bled() -> None:
    # 2.5 bar to 0 and back: below the 3 bar minimum pre-bleed level
    clean = sap_shape(level=2.5, recover_to=2.5)
    assert sap_found(detect_sap_series(TS, noisy(clean, 0.05, 3), steady_temperature(3))) == []


# --------------------------------------------------------------------------- (d) noise


@pytest.mark.parametrize("level", [40.0, 8.0, 4.0])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pure_noise_is_not_sap(level: float, seed: int) -> None:
    p = noisy(np.full(N, level), 1.5, seed)
    assert sap_found(detect_sap_series(TS, p, steady_temperature(seed))) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bad_quality_spikes_are_ignored(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = noisy(np.full(N, 40.0), 1.5, seed + 10)
    bad = rng.random(N) < 0.05
    p[bad] = rng.choice([0.0, 200.0], size=int(bad.sum()))
    good = ~bad
    temperature = steady_temperature(seed)
    assert sap_found(detect_sap_series(TS, p, temperature, good)) == []
    # ignored entirely: the same as if those readings had never arrived
    assert detect_sap_series(TS, p, temperature, good) == detect_sap_series(
        TS[good], p[good], temperature[good]
    )
    # the spikes matter when they are not flagged: the guard is the quality flag
    spiky = detect_sap_series(TS, p, temperature)
    clean = detect_sap_series(TS[good], p[good], temperature[good])
    assert spiky != clean


def test_sap_with_bad_spikes_flagged_is_still_found_once() -> None:
    rng = np.random.default_rng(11)
    p = noisy(sap_shape(), 0.3, 11)
    bad = rng.random(N) < 0.05
    p[bad] = rng.choice([0.0, 200.0], size=int(bad.sum()))
    assert len(sap_found(detect_sap_series(TS, p, steady_temperature(11), ~bad))) == 1


def test_non_finite_pressure_is_treated_as_bad() -> None:
    p = noisy(sap_shape(), 0.3, 12)
    with_nan = p.copy()
    with_nan[::37] = np.nan
    keep = ~np.isnan(with_nan)
    temperature = steady_temperature(12)
    assert detect_sap_series(TS, with_nan, temperature) == detect_sap_series(
        TS[keep], p[keep], temperature[keep]
    )


# --------------------------------------------------------------------------- episodes


def test_two_bleed_buildup_episodes_raise_twice() -> None:
    first = sap_shape()
    second_at = 30.0
    p = first.copy()
    later = HOURS >= second_at
    # second bleed from the recovered ~30 bar at 30 h, then recovery again
    shifted = np.interp(HOURS[later] - (second_at - BLEED_AT_H), HOURS, sap_shape(level=30.0))
    p[later] = shifted
    found = sap_found(detect_sap_series(TS, noisy(p, 0.3, 1), steady_temperature(1)))
    assert len(found) == 2
    assert found[0].episode_start < T0 + second_at * 3600 <= found[1].episode_start
    assert found[1].pre_bleed_bar == pytest.approx(30.0, abs=1.5)


# --------------------------------------------------------------------------- diagnostic


def plateau(
    segments: list[tuple[float, float]], step_s: float = STEP_S
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant pressure from (hours, bar) segments."""
    values = [np.full(round(hours * 3600 / step_s), bar) for hours, bar in segments]
    p = np.concatenate(values)
    return T0 + step_s * np.arange(p.size), p


def test_diagnostic_due_when_above_threshold_for_sustain_duration() -> None:
    ts, p = plateau([(1, 0.0), (7, 8.0), (2, 0.0)])
    found = detect_sap_series(ts, p)
    assert [f.kind for f in found] == ["diagnostic_test_due"]
    f = found[0]
    assert f.episode_start > T0 + 3600  # first time the smoothed pressure reached 6.9 bar
    assert f.ts - f.episode_start == pytest.approx(6 * 3600, abs=STEP_S)
    assert f.pressure_bar == 8.0
    assert f.details["threshold_bar"] == 6.9


def test_diagnostic_not_due_for_a_short_excursion() -> None:
    ts, p = plateau([(1, 0.0), (3, 8.0), (2, 0.0)])
    assert detect_sap_series(ts, p) == []


def test_diagnostic_raised_again_only_after_falling_below_and_rising_again() -> None:
    ts, p = plateau([(1, 0.0), (7, 8.0), (1, 2.0), (7, 8.0)])
    found = diag_found(detect_sap_series(ts, p))
    assert len(found) == 2
    assert found[1].episode_start > found[0].ts
    # held for 14 h without falling below: once
    ts, p = plateau([(1, 0.0), (14, 8.0)])
    assert len(diag_found(detect_sap_series(ts, p))) == 1


def test_diagnostic_dip_within_rearm_band_does_not_rearm() -> None:
    # 6.5 bar is below 6.9 but above 6.9 - 1.0: same episode, no second alarm
    ts, p = plateau([(1, 0.0), (7, 8.0), (1, 6.5), (7, 8.0)])
    assert len(diag_found(detect_sap_series(ts, p))) == 1


def test_diagnostic_sustain_is_configurable() -> None:
    ts, p = plateau([(1, 0.0), (3, 8.0), (2, 0.0)])
    params = replace(DEFAULT_SAP_PARAMS, diagnostic_sustain_s=2 * 3600.0)
    assert len(diag_found(detect_sap_series(ts, p, params=params))) == 1


def test_diagnostic_with_noise_hovering_at_threshold_raises_once() -> None:
    ts, p = plateau([(1, 0.0), (30, 7.2)])
    p = p + np.random.default_rng(1).normal(0.0, 1.5, p.size) * (p > 0)
    assert len(diag_found(detect_sap_series(ts, p))) == 1


# --------------------------------------------------------------------------- incremental


def _run_in_batches(
    ts: np.ndarray,
    p: np.ndarray,
    temperature: np.ndarray,
    good: np.ndarray,
    n_batches: int,
    seed: int,
) -> tuple[SapState, list[SapFinding]]:
    """Feed random-size batches, storing the state as JSON between them like a changelog."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, ts.size), size=n_batches - 1, replace=False))
    stored = json.dumps(SapState().to_dict())
    findings: list[SapFinding] = []
    for part in np.split(np.arange(ts.size), cuts):
        state = SapState.from_dict(json.loads(stored))
        state, new = sap_step(
            state, ts[part], p[part], temperature[part], good[part], DEFAULT_SAP_PARAMS
        )
        findings.extend(new)
        stored = json.dumps(state.to_dict(), allow_nan=False)
    return SapState.from_dict(json.loads(stored)), findings


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batches_give_the_same_findings_as_one_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = noisy(sap_shape(), 0.3, seed)
    good = rng.random(N) >= 0.05
    p[~good] = 0.0
    temperature = steady_temperature(seed)
    temperature[rng.random(N) < 0.1] = np.nan  # temperature sometimes absent
    whole_state, whole = sap_step(SapState(), TS, p, temperature, good, DEFAULT_SAP_PARAMS)
    state, batched = _run_in_batches(TS, p, temperature, good, 50, seed)
    assert len(sap_found(whole)) == 1 and len(diag_found(whole)) >= 1
    assert batched == whole
    assert state == whole_state


def test_batches_give_the_same_no_findings_for_thermal() -> None:
    clean = sap_shape()
    temperature = 30.0 + 0.6 * (clean - 1.0) + np.random.default_rng(3).normal(0.0, 0.3, N)
    p = noisy(clean, 0.3, 3)
    good = np.ones(N, dtype=bool)
    _, batched = _run_in_batches(TS, p, temperature, good, 50, 3)
    assert batched == detect_sap_series(TS, p, temperature)
    assert sap_found(batched) == []


def test_late_and_duplicate_readings_are_ignored() -> None:
    p = noisy(sap_shape(), 0.3, 6)
    temperature = steady_temperature(6)
    good = np.ones(N, dtype=bool)
    half = N // 2
    state, first = sap_step(
        SapState(), TS[:half], p[:half], temperature[:half], good[:half], DEFAULT_SAP_PARAMS
    )
    # replaying the first half (a historian buffer flush) changes nothing
    replayed, again = sap_step(
        state, TS[:half], p[:half] + 100.0, temperature[:half], good[:half], DEFAULT_SAP_PARAMS
    )
    assert again == [] and replayed == state
    # a batch mixing late and new readings only uses the new ones
    mixed = np.r_[half - 10 : half + 10]
    s_mixed, f_mixed = sap_step(
        state, TS[mixed], p[mixed], temperature[mixed], good[mixed], DEFAULT_SAP_PARAMS
    )
    new = np.r_[half : half + 10]
    s_new, f_new = sap_step(state, TS[new], p[new], temperature[new], good[new], DEFAULT_SAP_PARAMS)
    assert (s_mixed, f_mixed) == (s_new, f_new)
    _, rest = sap_step(
        state, TS[half:], p[half:], temperature[half:], good[half:], DEFAULT_SAP_PARAMS
    )
    assert first + rest == detect_sap_series(TS, p, temperature)


def test_only_event_time_matters() -> None:
    # The same readings a year later (a whole number of days, so the look-back buckets line
    # up the same way) give the same findings, a year later: nothing depends on when the
    # detector runs.
    p = noisy(sap_shape(), 0.3, 8)
    temperature = steady_temperature(8)
    year = 365 * 86400.0
    now = detect_sap_series(TS, p, temperature)
    later = detect_sap_series(TS + year, p, temperature)
    assert [f.kind for f in now] == [f.kind for f in later]
    assert len(sap_found(now)) == 1
    for a, b in zip(now, later, strict=True):
        assert b.ts - a.ts == year
        assert b.episode_start - a.episode_start == year
        assert (b.pre_bleed_bar, b.bleed_low_bar, b.buildup_bar) == (
            a.pre_bleed_bar,
            a.bleed_low_bar,
            a.buildup_bar,
        )


def test_irregular_sampling_finds_the_same_episode() -> None:
    rng = np.random.default_rng(2)
    keep = np.sort(rng.choice(N, size=N // 3, replace=False))  # ~3-minute irregular spacing
    p = noisy(sap_shape(), 0.3, 2)
    found = sap_found(detect_sap_series(TS[keep], p[keep], steady_temperature(2)[keep]))
    assert len(found) == 1


# --------------------------------------------------------------------------- state & params


def test_state_round_trips_through_json() -> None:
    p = noisy(sap_shape(), 0.3, 1)
    temperature = steady_temperature(1)
    good = np.ones(N, dtype=bool)
    cut = int(BLEED_AT_H * 60) + 60  # mid-episode: bled, waiting for the build-up
    state, _ = sap_step(
        SapState(), TS[:cut], p[:cut], temperature[:cut], good[:cut], DEFAULT_SAP_PARAMS
    )
    assert state.phase == "bled"
    text = json.dumps(state.to_dict(), allow_nan=False)
    assert SapState.from_dict(json.loads(text)) == state
    assert SapState.from_dict(SapState().to_dict()) == SapState()


def test_state_from_dict_rejects_other_layouts() -> None:
    data = SapState().to_dict()
    with pytest.raises(ValueError, match="version"):
        SapState.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="unknown SapState keys"):
        SapState.from_dict({**data, "surprise": 1})
    with pytest.raises(ValueError, match="phase"):
        SapState.from_dict({**data, "phase": "bleeding"})


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        sap_step(SapState(), TS[:3], TS[:2], TS[:3], np.ones(3, bool), DEFAULT_SAP_PARAMS)


def test_empty_batch_keeps_state() -> None:
    empty = np.array([])
    state, found = sap_step(SapState(), empty, empty, empty, np.array([], bool), DEFAULT_SAP_PARAMS)
    assert state == SapState() and found == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smoothing_tau_s": -1.0},
        {"smoothing_tau_s": math.nan},
        {"min_pre_bleed_bar": 0.0},
        {"bleed_drop_fraction": 0.0},
        {"bleed_drop_fraction": 0.6},  # above the build-up fraction
        {"buildup_fraction": 1.5},
        {"bleed_max_duration_s": 0.0},
        {"buildup_window_s": -5.0},
        {"thermal_min_correlation": 1.5},
        {"thermal_min_delta_c": -1.0},
        {"thermal_min_points": 1},
        {"diagnostic_threshold_bar": 0.0},
        {"diagnostic_sustain_s": -1.0},
        {"diagnostic_rearm_band_bar": -0.1},
        {"diagnostic_smoothing_tau_s": -1.0},
    ],
)
def test_bad_params_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SapParams(**kwargs)


def test_default_params() -> None:
    p = DEFAULT_SAP_PARAMS
    assert p.smoothing_tau_s == 120.0
    assert p.diagnostic_smoothing_tau_s == 1800.0
    assert p.min_pre_bleed_bar == 3.0
    assert p.bleed_drop_fraction == 0.3
    assert p.bleed_max_duration_s == 7200.0
    assert p.buildup_fraction == 0.5
    assert p.buildup_window_s == 86400.0
    assert (p.thermal_min_correlation, p.thermal_min_delta_c) == (0.9, 5.0)
    assert p.diagnostic_threshold_bar == 6.9
    assert p.diagnostic_sustain_s == 21600.0


def test_a_five_minute_bleed_with_an_immediate_build_up_is_sap() -> None:
    """A valve opened for five minutes, then closed: the build-up starts at once (found by
    the demo; a 10-minute smoothing window never saw the pressure reach the bleed level)."""
    rng = np.random.default_rng(3)
    ts = np.arange(0.0, 4 * 3600, 12.0)
    base = 15.0
    p = np.full(ts.size, base)
    bleed = (ts >= 3600) & (ts < 3900)
    p[bleed] = base - (base - 0.3) * (ts[bleed] - 3600) / 300
    after = ts >= 3900
    p[after] = 0.3 + (base - 0.3) * (1 - np.exp(-3.0 * (ts[after] - 3900) / 3600))
    p = np.maximum(0.0, p + rng.normal(0.0, 0.07, ts.size))
    temperature = 45.0 + rng.normal(0.0, 0.1, ts.size)
    findings = detect_sap_series(1.7e9 + ts, p, temperature, np.ones(ts.size, bool))
    assert [f.kind for f in findings] == ["sap_detected"]
