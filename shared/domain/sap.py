"""Sustained annulus pressure (SAP) and diagnostic-test-due detection, in event time.

Pure domain code: no I/O, no clock. Follows docs/domain.md "Sustained annulus pressure (SAP)" (API RP 90,
ISO 16530-1, 30 CFR 250.520-523).

What it looks for
-----------------
SAP is pressure that **rebuilds after it is bled down** and whose rise the annulus
**temperature does not explain**. The detector follows one annulus' readings in order and
looks for that signature:

1. **Smoothing.** Every good reading updates an exponentially weighted moving average of the
   pressure with time constant ``smoothing_tau_s`` in *event time* (the weight of a reading
   is ``1 - exp(-Δt / tau)`` where Δt is the time since the previous good reading), so
   gauge noise and single-sample spikes do not look like bleeds or build-ups, and irregular
   sampling and gaps are handled (after a gap much longer than tau the average restarts at
   the new reading). Every decision below uses the smoothed pressure.
2. **Bleed-down.** A bleed is a *fast* drop from a *held* level. The detector keeps the
   highest and lowest smoothed pressure in seven time buckets of a quarter of
   ``bleed_max_duration_s`` each (a look-back of 1.5 to 1.75 times that duration, O(1)
   state). The pre-bleed level P is the highest smoothed pressure in the look-back. A bleed
   is recognised when

   - P >= ``min_pre_bleed_bar`` (smaller levels are noise),
   - the smoothed pressure has fallen to ``bleed_drop_fraction`` × P or below,
   - the drop was fast: the last time the smoothed pressure was within 10 % of P is no
     more than ``bleed_max_duration_s`` ago (so it went from 90 % of P to
     ``bleed_drop_fraction`` × P within that time), and
   - P was a held level: for at least one whole bucket (a quarter of
     ``bleed_max_duration_s``) the smoothed pressure stayed within 10 % of P.

   The last two together reject a steady decline of any rate (a decline slow enough to stay
   within 10 % for a quarter of the duration cannot also lose 60 % in the whole duration),
   including the tail of a decline towards zero, where a relative drop alone would match.
   The episode starts (its id, ``episode_start``) at that last time within 10 % of P,
   i.e. where the drop began.
3. **Build-up.** After the bleed the detector tracks the lowest smoothed pressure (the bleed
   low). If, within ``buildup_window_s`` of recognising the bleed, the smoothed pressure
   rises back to ``buildup_fraction`` of the pre-bleed level, the build-up is judged; if the
   window passes first, the episode ends without a finding (bled down, did not come back).
4. **Thermal test.** From the bleed low on, running sums (count, Σp, ΣT, Σp², ΣT², ΣpT,
   shifted by the first point for numerical stability) give the Pearson correlation of
   smoothed pressure with temperature over the build-up, in O(1) state. The rise is
   *explained by temperature* when the correlation exceeds ``thermal_min_correlation`` AND
   the temperature rose by more than ``thermal_min_delta_c`` over the build-up, with at
   least ``thermal_min_points`` temperature readings. A thermal build-up ends the episode
   with no finding; otherwise ``sap_detected`` is raised, once per episode. Without enough
   temperature readings the test cannot clear the rise, so SAP is raised (``details`` says
   why). After either outcome the detector starts looking for a new bleed afresh.
5. **Diagnostic test due** (30 CFR 250.520-523: a diagnostic test is due when casing pressure
   exceeds 100 psig, 6.9 bar). An episode starts when the slowly smoothed pressure reaches
   ``diagnostic_threshold_bar``; when it has lasted ``diagnostic_sustain_s`` and the
   pressure is at or above the threshold, ``diagnostic_test_due`` is raised once for the
   episode. The episode (and so the alarm) is re-armed only when the smoothed pressure
   falls below ``diagnostic_threshold_bar - diagnostic_rearm_band_bar``; dips within the
   band neither end the episode nor re-arm it, so pressure hovering at the threshold raises
   at most once.

Limits: a pressure the operator imposes (gas lift in an A annulus) looks like a build-up;
such annuli must be excluded by configuration. A real SAP that happens to rise together
with a temperature change of more than ``thermal_min_delta_c`` is judged thermal. A data
gap longer than the bleed look-back hides a bleed that happened in it.

How it runs
-----------
:func:`sap_step` is an incremental state machine: it folds one time-ordered batch of one
annulus' readings into a small frozen :class:`SapState` (O(1) size, JSON-able through
:meth:`SapState.to_dict` / :meth:`SapState.from_dict`, so a stream worker can keep it in a
changelog table) and returns the findings judged in that batch. Only event time (the
readings' timestamps) is used, and a reading is processed the same way whatever batch it
arrives in, so feeding a series in any split gives the same findings as one batch.
Bad-quality readings (``good`` False, or a non-finite pressure or timestamp) are ignored
entirely. A reading whose timestamp is not after the last processed one (late, replayed or
duplicate) is ignored, so replays never double count; the caller counts late data itself.

Parameters (:class:`SapParams`, WIMS defaults, configurable)
------------------------------------------------------------
- ``smoothing_tau_s`` = 120 s: EWMA time constant (about 2 min of event time); 0 disables
  smoothing. Longer smoothing hides a real bleed-down: an operator's bleed takes minutes and
  the build-up starts as soon as the valve closes, so a 10-minute average never sees the
  pressure reach the bleed level.
- ``min_pre_bleed_bar`` = 3 bar: a smaller pre-bleed level is noise, not a bleed.
- ``bleed_drop_fraction`` = 0.3: the bleed must take pressure to <= 30 % of the pre-bleed
  level.
- ``bleed_max_duration_s`` = 7200 s (2 h): the longest drop (from 90 % of the pre-bleed
  level to ``bleed_drop_fraction`` of it) that counts as a bleed; a quarter of it (30 min)
  is how long the pre-bleed level must have been held.
- ``buildup_fraction`` = 0.5: the build-up must return to >= 50 % of the pre-bleed level.
- ``buildup_window_s`` = 86400 s (24 h): time allowed for that, from the bleed being
  recognised (the usual bleed-down/build-up observation period).
- ``thermal_min_correlation`` = 0.9: Pearson correlation of pressure with temperature over
  the build-up above which the rise may be thermal.
- ``thermal_min_delta_c`` = 5 degC: the temperature must also have risen by more than this
  for the rise to be thermal.
- ``thermal_min_points`` = 5: fewest temperature readings in the build-up for the test.
- ``diagnostic_threshold_bar`` = 6.9 bar (100 psig, 30 CFR 250.520-523).
- ``diagnostic_smoothing_tau_s`` = 1800 s: the diagnostic trigger judges a slower (30 min)
  average, so noise around 6.9 bar neither starts nor re-arms an episode.
- ``diagnostic_sustain_s`` = 21600 s (6 h): how long the pressure must stay up (WIMS
  default, so a transient does not open a test).
- ``diagnostic_rearm_band_bar`` = 1.0 bar: how far below the threshold the pressure must
  fall before a new episode can raise again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from shared.domain.ordering import all_in_order

SapFindingKind = Literal["sap_detected", "diagnostic_test_due"]
SapPhase = Literal["idle", "bled"]

#: Version of the :meth:`SapState.to_dict` layout, checked by :meth:`SapState.from_dict`.
STATE_VERSION = 1
#: Buckets of the pre-bleed look-back, each a quarter of ``bleed_max_duration_s`` long.
#: Seven guarantee a whole bucket before the start of any drop that is fast enough:
#: (7 - 1) quarters of look-back = the whole duration + two quarters.
BUCKETS = 7
BUCKETS_PER_BLEED_DURATION = 4
#: "Within 10 % of the pre-bleed level": where the drop starts, and what a held level means.
_NEAR_PEAK = 0.9


@dataclass(frozen=True, slots=True)
class SapParams:
    """Detector parameters; see the module docstring for what each one does."""

    smoothing_tau_s: float = 120.0
    min_pre_bleed_bar: float = 3.0
    bleed_drop_fraction: float = 0.3
    bleed_max_duration_s: float = 2 * 3600.0
    buildup_fraction: float = 0.5
    buildup_window_s: float = 24 * 3600.0
    thermal_min_correlation: float = 0.9
    thermal_min_delta_c: float = 5.0
    thermal_min_points: int = 5
    diagnostic_threshold_bar: float = 6.9
    diagnostic_sustain_s: float = 6 * 3600.0
    diagnostic_smoothing_tau_s: float = 1800.0
    diagnostic_rearm_band_bar: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value):
                raise ValueError(f"SapParams.{f.name} must be finite, got {value}")
        if self.smoothing_tau_s < 0:
            raise ValueError(f"smoothing_tau_s must be >= 0, got {self.smoothing_tau_s}")
        if self.min_pre_bleed_bar <= 0:
            raise ValueError(f"min_pre_bleed_bar must be > 0, got {self.min_pre_bleed_bar}")
        if not 0.0 < self.bleed_drop_fraction < self.buildup_fraction <= 1.0:
            # The build-up target must lie above the bled level, or the bleed itself would
            # count as its own build-up.
            raise ValueError(
                "need 0 < bleed_drop_fraction < buildup_fraction <= 1, got "
                f"{self.bleed_drop_fraction} and {self.buildup_fraction}"
            )
        for name in ("bleed_max_duration_s", "buildup_window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not -1.0 <= self.thermal_min_correlation <= 1.0:
            raise ValueError(
                f"thermal_min_correlation must be in [-1, 1], got {self.thermal_min_correlation}"
            )
        if self.thermal_min_delta_c < 0:
            raise ValueError(f"thermal_min_delta_c must be >= 0, got {self.thermal_min_delta_c}")
        if self.thermal_min_points < 2:
            raise ValueError(f"thermal_min_points must be >= 2, got {self.thermal_min_points}")
        if self.diagnostic_threshold_bar <= 0:
            raise ValueError(
                f"diagnostic_threshold_bar must be > 0, got {self.diagnostic_threshold_bar}"
            )
        if self.diagnostic_smoothing_tau_s < 0:
            raise ValueError(
                f"diagnostic_smoothing_tau_s must be >= 0, got {self.diagnostic_smoothing_tau_s}"
            )
        if self.diagnostic_sustain_s < 0:
            raise ValueError(f"diagnostic_sustain_s must be >= 0, got {self.diagnostic_sustain_s}")
        if self.diagnostic_rearm_band_bar < 0:
            raise ValueError(
                f"diagnostic_rearm_band_bar must be >= 0, got {self.diagnostic_rearm_band_bar}"
            )


DEFAULT_SAP_PARAMS = SapParams()


@dataclass(frozen=True, slots=True)
class SapFinding:
    """One judgement of the detector.

    ``ts`` is the event time (epoch seconds) of the reading at which it was judged;
    ``episode_start`` identifies the episode (bleed start for ``sap_detected``, first time at
    the threshold for ``diagnostic_test_due``), so a consumer can de-duplicate on
    (annulus, kind, episode_start). Pressures are in bar: ``pre_bleed_bar``,
    ``bleed_low_bar`` and ``buildup_bar`` are smoothed values (None for a diagnostic
    finding); ``pressure_bar`` is the raw reading at ``ts``. ``details`` is JSON-able.
    """

    kind: SapFindingKind
    ts: float
    episode_start: float
    pre_bleed_bar: float | None
    bleed_low_bar: float | None
    buildup_bar: float | None
    pressure_bar: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SapState:
    """The detector's state for one annulus: small, frozen and JSON-able.

    ``SapState()`` is the state before any reading. Fields are internal to the detector;
    store them with :meth:`to_dict` and restore with :meth:`from_dict`.
    """

    last_ts: float | None = None
    smoothed_bar: float | None = None
    # Pre-bleed look-back: index of the newest bucket (floor(ts / bucket length)) and the
    # highest and lowest smoothed pressure in each bucket, oldest first; None when empty.
    bucket_index: int | None = None
    bucket_highs: tuple[float | None, ...] = ()
    bucket_lows: tuple[float | None, ...] = ()
    last_high_ts: float | None = None
    phase: SapPhase = "idle"
    pre_bleed_bar: float | None = None
    bleed_start_ts: float | None = None
    bleed_detected_ts: float | None = None
    bleed_low_bar: float | None = None
    # Thermal test running sums over the build-up, shifted by (th_p0, th_t0), the first
    # point with a temperature, so the variances do not lose precision to cancellation.
    th_n: int = 0
    th_p0: float = 0.0
    th_t0: float = 0.0
    th_sp: float = 0.0
    th_st: float = 0.0
    th_spp: float = 0.0
    th_stt: float = 0.0
    th_spt: float = 0.0
    th_t_last: float = 0.0
    diag_since_ts: float | None = None
    diag_raised: bool = False
    # Slower EWMA for the diagnostic trigger: "sustained" is judged on a longer average.
    diag_smoothed_bar: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (no NaN or infinities, tuples as lists) with a layout version."""
        out: dict[str, Any] = {"version": STATE_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SapState:
        """Inverse of :meth:`to_dict`. Raises ValueError for another version or unknown keys."""
        data = dict(data)
        version = data.pop("version", None)
        if version != STATE_VERSION:
            raise ValueError(f"unsupported SapState version {version!r}, want {STATE_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown SapState keys: {sorted(unknown)}")

        def opt_float(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        kwargs: dict[str, Any] = {}
        for name in names & set(data):
            kwargs[name] = data[name]
        for name in (
            "last_ts",
            "smoothed_bar",
            "last_high_ts",
            "pre_bleed_bar",
            "bleed_start_ts",
            "bleed_detected_ts",
            "bleed_low_bar",
            "diag_since_ts",
            "diag_smoothed_bar",
        ):
            if name in data:
                kwargs[name] = opt_float(name)
        if "th_n" in data:
            kwargs["th_n"] = int(data["th_n"])
        if "diag_raised" in data:
            kwargs["diag_raised"] = bool(data["diag_raised"])
        if data.get("bucket_index") is not None:
            kwargs["bucket_index"] = int(data["bucket_index"])
        for name in ("bucket_highs", "bucket_lows"):
            if name in data:
                kwargs[name] = tuple(None if v is None else float(v) for v in data[name])
        if "phase" in data and data["phase"] not in ("idle", "bled"):
            raise ValueError(f"unknown SapState phase {data['phase']!r}")
        return cls(**kwargs)


def sap_step(
    state: SapState,
    ts_s: np.ndarray,
    pressure_bar: np.ndarray,
    temperature_c: np.ndarray,
    good: np.ndarray,
    params: SapParams,
) -> tuple[SapState, list[SapFinding]]:
    """Fold one time-ordered batch of one annulus' readings into the detector state.

    ``ts_s`` is event time in epoch seconds; ``temperature_c`` is NaN where there is no
    temperature; ``good`` is False for bad-quality readings, which are ignored. Returns the
    new state and the findings judged in this batch, in event-time order.
    """
    ts, pres, temp = _usable_columns(ts_s, pressure_bar, temperature_c, good)

    # Parameters as locals: this loop is the per-reading hot path.
    tau = params.smoothing_tau_s
    bucket_len = params.bleed_max_duration_s / BUCKETS_PER_BLEED_DURATION
    bleed_max = params.bleed_max_duration_s
    min_pre = params.min_pre_bleed_bar
    drop_frac = params.bleed_drop_fraction
    diag_thr = params.diagnostic_threshold_bar
    diag_rearm = diag_thr - params.diagnostic_rearm_band_bar
    diag_sustain = params.diagnostic_sustain_s
    diag_tau = params.diagnostic_smoothing_tau_s

    # State as locals; a bleed episode and the thermal sums as tuples (see _buildup_step).
    last_ts, s, ds = state.last_ts, state.smoothed_bar, state.diag_smoothed_bar
    bidx, highs, lows, peak = _lookback_of(state)
    last_high, phase = state.last_high_ts, state.phase
    episode = _episode_of(state)
    th = _thermal_of(state)
    diag_since, diag_raised = state.diag_since_ts, state.diag_raised

    findings: list[SapFinding] = []
    for t, x, tc in zip(ts.tolist(), pres.tolist(), temp.tolist(), strict=True):
        if last_ts is not None and t <= last_ts:
            continue  # late, replayed or duplicate: judged already (or too late to judge)
        # 1. Event-time EWMA (and the slower one of the diagnostic trigger).
        if s is None or last_ts is None or tau <= 0.0:
            s = x
        else:
            s += -math.expm1(-(t - last_ts) / tau) * (x - s)
        if ds is None or last_ts is None or diag_tau <= 0.0:
            ds = x
        else:
            ds += -math.expm1(-(t - last_ts) / diag_tau) * (x - ds)
        last_ts = t

        if phase == "idle":
            # 2. Pre-bleed look-back buckets.
            b = math.floor(t / bucket_len)
            shift = BUCKETS if bidx is None else b - bidx
            if shift == 0:
                hi, lo = highs[-1], lows[-1]
                if hi is None or s > hi:
                    highs[-1] = s
                if lo is None or s < lo:
                    lows[-1] = s
                if peak is None or s > peak:
                    peak = s
            else:
                highs, lows = _shifted(highs, lows, shift, s)
                bidx = b
                peak = max(v for v in highs if v is not None)
            assert peak is not None
            near = _NEAR_PEAK * peak
            if s >= near:
                last_high = t
            if (
                peak >= min_pre
                and s <= drop_frac * peak
                and last_high is not None
                and t - last_high <= bleed_max
                and any(v is not None and v >= near for v in lows)
            ):
                phase, episode = "bled", (peak, last_high, t, s)
                th = _thermal_restart(th)
                if tc == tc:  # not NaN
                    th = _thermal_add(th, s, tc)
        else:
            # 3. Build-up and 4. its thermal test (a bleed episode is rare: a call is fine).
            episode, th, found = _buildup_step(episode, th, t, x, s, tc, params)
            if found is not None:
                findings.append(found)
            if episode is None:
                # The episode ended: look for the next bleed afresh, from the current level.
                phase = "idle"
                bidx, (highs, lows) = math.floor(t / bucket_len), _shifted([], [], BUCKETS, s)
                peak, last_high = s, t

        # 5. Diagnostic test due.
        if ds >= diag_thr:
            if diag_since is None:
                diag_since, diag_raised = t, False
            if not diag_raised and t - diag_since >= diag_sustain:
                diag_raised = True
                findings.append(_diagnostic_finding(t, diag_since, x, ds, diag_thr))
        elif ds < diag_rearm:
            diag_since, diag_raised = None, False

    new_state = SapState(
        last_ts=last_ts,
        smoothed_bar=s,
        bucket_index=bidx,
        bucket_highs=tuple(highs),
        bucket_lows=tuple(lows),
        last_high_ts=last_high,
        phase=phase,
        diag_since_ts=diag_since,
        diag_raised=diag_raised,
        diag_smoothed_bar=ds,
        **dict(zip(_EPISODE_FIELDS, episode or _NO_EPISODE, strict=True)),
        **dict(zip(_THERMAL_FIELDS, th, strict=True)),
    )
    return new_state, findings


def _usable_columns(
    ts_s: np.ndarray, pressure_bar: np.ndarray, temperature_c: np.ndarray, good: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time, pressure and temperature (NaN: none) of the usable readings: good, with a
    finite time and pressure."""
    ts = np.asarray(ts_s, dtype=np.float64).reshape(-1)
    pres = np.asarray(pressure_bar, dtype=np.float64).reshape(-1)
    temp = np.asarray(temperature_c, dtype=np.float64).reshape(-1)
    ok = np.asarray(good, dtype=bool).reshape(-1)
    if not ts.shape == pres.shape == temp.shape == ok.shape:
        raise ValueError(
            "ts_s, pressure_bar, temperature_c and good must have the same length, got "
            f"{ts.shape[0]}, {pres.shape[0]}, {temp.shape[0]}, {ok.shape[0]}"
        )
    usable = ok & np.isfinite(ts) & np.isfinite(pres)
    temp = np.where(np.isfinite(temp), temp, np.nan)  # +-inf temperature: no temperature
    idx = np.flatnonzero(usable)
    return ts[idx], pres[idx], temp[idx]


def _lookback_of(
    state: SapState,
) -> tuple[int | None, list[float | None], list[float | None], float | None]:
    """The look-back buckets of a state (index, highs, lows) and their peak."""
    highs: list[float | None] = list(state.bucket_highs)
    lows: list[float | None] = list(state.bucket_lows)
    if len(highs) != BUCKETS or len(lows) != BUCKETS:
        return None, [], [], None
    present = [v for v in highs if v is not None]
    return state.bucket_index, highs, lows, max(present) if present else None


def _shifted(
    highs: list[float | None], lows: list[float | None], shift: int, s: float
) -> tuple[list[float | None], list[float | None]]:
    """The look-back buckets after moving ``shift`` buckets on to one holding ``s``."""
    if 0 < shift < BUCKETS:
        pad: list[float | None] = [None] * (shift - 1)
        return [*highs[shift:], *pad, s], [*lows[shift:], *pad, s]
    # The first reading, a long gap, or a changed bucket length.
    return [*([None] * (BUCKETS - 1)), s], [*([None] * (BUCKETS - 1)), s]


#: The thermal test's running sums as sap_step carries them, in SapState's field order:
#: count, the shift point (pressure, temperature), Σdp, Σdt, Σdp², Σdt², Σdp·dt and the
#: last temperature.
_THERMAL_FIELDS = (
    "th_n",
    "th_p0",
    "th_t0",
    "th_sp",
    "th_st",
    "th_spp",
    "th_stt",
    "th_spt",
    "th_t_last",
)
_Thermal = tuple[int, float, float, float, float, float, float, float, float]
_THERMAL_EMPTY: _Thermal = (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _thermal_of(state: SapState) -> _Thermal:
    return (
        state.th_n,
        state.th_p0,
        state.th_t0,
        state.th_sp,
        state.th_st,
        state.th_spp,
        state.th_stt,
        state.th_spt,
        state.th_t_last,
    )


def _thermal_restart(th: _Thermal) -> _Thermal:
    """The sums counted from zero again (at a new bleed low); the shift point and the last
    temperature stay until the next reading with a temperature."""
    return (0, th[1], th[2], 0.0, 0.0, 0.0, 0.0, 0.0, th[8])


def _thermal_add(th: _Thermal, s: float, tc: float) -> _Thermal:
    """The sums with one more (smoothed pressure, temperature) point."""
    n, p0, t0, sp, st, spp, stt, spt, _ = th
    if n == 0:
        p0, t0 = s, tc
    dp, dt = s - p0, tc - t0
    return (n + 1, p0, t0, sp + dp, st + dt, spp + dp * dp, stt + dt * dt, spt + dp * dt, tc)


#: A bleed episode as sap_step carries it, in SapState's field order: the pre-bleed level,
#: the episode start, when the bleed was recognised and the bleed low; None when idle.
_EPISODE_FIELDS = ("pre_bleed_bar", "bleed_start_ts", "bleed_detected_ts", "bleed_low_bar")
_Episode = tuple[float, float, float, float]
_NO_EPISODE = (None, None, None, None)


def _episode_of(state: SapState) -> _Episode | None:
    if state.phase != "bled":
        return None
    episode = (
        state.pre_bleed_bar,
        state.bleed_start_ts,
        state.bleed_detected_ts,
        state.bleed_low_bar,
    )
    assert None not in episode, "a bled SapState has its episode"
    return episode  # type: ignore[return-value]


def _buildup_step(
    episode: _Episode | None,
    th: _Thermal,
    t: float,
    x: float,
    s: float,
    tc: float,
    params: SapParams,
) -> tuple[_Episode | None, _Thermal, SapFinding | None]:
    """One reading of a bleed episode: the bleed low and the thermal sums follow it; the
    episode ends (None) when the pressure is back to ``buildup_fraction`` of the pre-bleed
    level (judged by the thermal test, a finding unless temperature explains the rise) or
    when ``buildup_window_s`` passed since the bleed without that."""
    assert episode is not None
    pre, bstart, bdet, low = episode
    if s < low:  # the thermal sums start at the bleed low
        low = s
        th = _thermal_restart(th)
    if tc == tc:  # not NaN
        th = _thermal_add(th, s, tc)
    if s >= params.buildup_fraction * pre:
        return None, _THERMAL_EMPTY, _buildup_finding(th, t, x, s, pre, low, bstart, bdet, params)
    if t - bdet > params.buildup_window_s:
        return None, _THERMAL_EMPTY, None  # bled down and did not come back in time
    return (pre, bstart, bdet, low), th, None


def _buildup_finding(
    th: _Thermal,
    t: float,
    x: float,
    s: float,
    pre: float,
    low: float,
    bstart: float,
    bdet: float,
    params: SapParams,
) -> SapFinding | None:
    """The thermal test of a build-up back to ``buildup_fraction`` of the pre-bleed level:
    None when temperature explains the rise, else the ``sap_detected`` finding."""
    n, _, t0, sp, st, spp, stt, spt, t_last = th
    corr: float | None = None
    delta_t: float | None = None
    if n >= params.thermal_min_points:
        var_p = spp - sp * sp / n
        var_t = stt - st * st / n
        if var_p > 0.0 and var_t > 0.0:
            corr = max(-1.0, min(1.0, (spt - sp * st / n) / math.sqrt(var_p * var_t)))
        delta_t = t_last - t0
    thermal = (
        corr is not None
        and delta_t is not None
        and corr > params.thermal_min_correlation
        and delta_t > params.thermal_min_delta_c
    )
    if thermal:
        return None
    if n < params.thermal_min_points:
        reason = "too few temperature readings to test"
    elif corr is None:
        reason = "pressure or temperature did not vary"
    else:
        reason = "rise not explained by temperature"
    return SapFinding(
        kind="sap_detected",
        ts=t,
        episode_start=bstart,
        pre_bleed_bar=pre,
        bleed_low_bar=low,
        buildup_bar=s,
        pressure_bar=x,
        details={
            "bleed_detected_ts": bdet,
            "buildup_duration_s": t - bdet,
            "buildup_fraction": s / pre,
            "temperature_points": n,
            "temperature_correlation": corr,
            "temperature_change_c": delta_t,
            "thermal_test": reason,
        },
    )


def _diagnostic_finding(t: float, since: float, x: float, ds: float, thr: float) -> SapFinding:
    return SapFinding(
        kind="diagnostic_test_due",
        ts=t,
        episode_start=since,
        pre_bleed_bar=None,
        bleed_low_bar=None,
        buildup_bar=None,
        pressure_bar=x,
        details={"smoothed_bar": ds, "threshold_bar": thr, "sustained_s": t - since},
    )


def detect_sap_series(
    ts_s: np.ndarray,
    pressure_bar: np.ndarray,
    temperature_c: np.ndarray | None = None,
    good: np.ndarray | None = None,
    params: SapParams = DEFAULT_SAP_PARAMS,
) -> list[SapFinding]:
    """Run a fresh detector over whole arrays; all findings in event-time order.

    No ``temperature_c`` means no temperature (the thermal test cannot clear a build-up);
    no ``good`` means every reading is good.
    """
    ts = np.asarray(ts_s, dtype=np.float64).reshape(-1)
    temp = (
        np.full(ts.shape, np.nan)
        if temperature_c is None
        else np.asarray(temperature_c, dtype=np.float64)
    )
    ok = np.ones(ts.shape, dtype=bool) if good is None else np.asarray(good, dtype=bool)
    _, findings = sap_step(SapState(), ts, pressure_bar, temp, ok, params)
    return findings


#: Lockstep stepping pays for itself with at least this many annuli per column.
LOCKSTEP_MIN_GROUPS = 16


def _state_vectors(states: list[SapState]) -> tuple[np.ndarray, ...]:
    """Per-annulus start values for the lockstep: NaN stands for None."""
    nan = math.nan
    rows = []
    for st in states:
        highs = st.bucket_highs
        valid = (
            st.bucket_index is not None
            and len(highs) == BUCKETS
            and len(st.bucket_lows) == (BUCKETS)
        )
        rows.append(
            (
                nan if st.last_ts is None else st.last_ts,
                nan if st.smoothed_bar is None else st.smoothed_bar,
                nan if st.diag_smoothed_bar is None else st.diag_smoothed_bar,
                nan if st.diag_since_ts is None else st.diag_since_ts,
                st.diag_raised,
                st.bucket_index if valid else nan,
                st.phase == "idle",
            )
        )
    return tuple(np.array(col) for col in zip(*rows, strict=True))


def sap_step_many(
    states: list[SapState],
    starts: np.ndarray,
    ends: np.ndarray,
    ts_s: np.ndarray,
    pressure_bar: np.ndarray,
    temperature_c: np.ndarray,
    good: np.ndarray,
    params: SapParams,
) -> list[tuple[SapState, list[SapFinding]]]:
    """:func:`sap_step` for many annuli at once: ``[sap_step(states[g], <slice g>...)]``.

    Annulus ``g``'s readings are ``[starts[g], ends[g])`` of the arrays. The result is
    exactly that of :func:`sap_step` per annulus (same floats, bit for bit). The common
    case, an idle detector whose readings stay in one look-back bucket, find no bleed and
    raise no diagnostic, is stepped for all such annuli together, one numpy step per
    reading position ("column") instead of one Python step per reading: the smoothing is
    the same IEEE arithmetic in the same order, with ``math.expm1`` for the weights.
    Every annulus that does anything else (a possible bleed, a diagnostic change, a bucket
    change within the batch, out-of-order readings, a bleed in progress) is handed to
    :func:`sap_step` itself, from its original state.
    """
    g_n = len(states)
    out: list[tuple[SapState, list[SapFinding]] | None] = [None] * g_n
    if g_n == 0:
        return []
    ts = np.asarray(ts_s, dtype=np.float64)
    pres = np.asarray(pressure_bar, dtype=np.float64)
    temp = np.asarray(temperature_c, dtype=np.float64)
    ok = np.asarray(good, dtype=bool)
    starts = np.asarray(starts, dtype=np.intp)
    ends = np.asarray(ends, dtype=np.intp)
    tau = params.smoothing_tau_s
    diag_tau = params.diagnostic_smoothing_tau_s
    bucket_len = params.bleed_max_duration_s / BUCKETS_PER_BLEED_DURATION
    scalar = np.ones(g_n, dtype=bool)
    if tau > 0.0 and diag_tau > 0.0:
        scalar = _lockstep(states, starts, ends, ts, pres, ok, params, bucket_len, out)
    for g in np.flatnonzero(scalar).tolist():
        s, e = int(starts[g]), int(ends[g])
        out[g] = sap_step(states[g], ts[s:e], pres[s:e], temp[s:e], ok[s:e], params)
    return out  # type: ignore[return-value]


def _lockstep(
    states: list[SapState],
    starts: np.ndarray,
    ends: np.ndarray,
    ts: np.ndarray,
    pres: np.ndarray,
    ok: np.ndarray,
    params: SapParams,
    bucket_len: float,
    out: list[Any],
) -> np.ndarray:
    """Fill ``out`` for the annuli it can step together; returns the mask of the rest."""
    plan = _lockstep_plan(states, starts, ends, ts, pres, ok, bucket_len)
    if plan is None:
        return np.ones(len(states), dtype=bool)
    return _lockstep_states(plan, _lockstep_columns(plan, states, params), states, out)


@dataclass(slots=True)
class _Plan:
    """The annuli the lockstep steps (``order``: longest first, ``cols`` readings at most)
    and the usable readings of the batch, annulus after annulus (``ug``/``ut``/``ux``:
    annulus, time, pressure; ``cnt``/``ustart``: each annulus' run), with each annulus'
    first look-back bucket and its start values (NaN for None)."""

    order: np.ndarray
    cols: int
    ug: np.ndarray
    ut: np.ndarray
    ux: np.ndarray
    cnt: np.ndarray
    ustart: np.ndarray
    b_first: np.ndarray
    last_ts0: np.ndarray
    s0: np.ndarray
    ds0: np.ndarray
    since0: np.ndarray
    raised0: np.ndarray
    bidx0: np.ndarray


def _lockstep_plan(
    states: list[SapState],
    starts: np.ndarray,
    ends: np.ndarray,
    ts: np.ndarray,
    pres: np.ndarray,
    ok: np.ndarray,
    bucket_len: float,
) -> _Plan | None:
    """Which annuli the lockstep can step: idle, all in order, in one look-back bucket for
    the whole batch; None when too few."""
    g_n = len(states)
    last_ts0, s0, ds0, since0, raised0, bidx0, idle = _state_vectors(states)
    lens = ends - starts
    gid = np.repeat(np.arange(g_n), lens)
    usable = ok & np.isfinite(ts) & np.isfinite(pres)
    u = np.flatnonzero(usable)
    ug, ut, ux = gid[u], ts[u], pres[u]
    cnt = np.bincount(ug, minlength=g_n)
    ustart = np.cumsum(cnt) - cnt
    m = ut.shape[0]
    # In order (shared.domain.ordering: none of its usable readings late).
    newest = np.where(np.isnan(last_ts0), -math.inf, last_ts0)
    fine = idle & (cnt > 0) & all_in_order(ut, ustart, ustart + cnt, newest)
    if m:
        has = cnt > 0
        first_t = np.full(g_n, np.nan)
        last_t = np.full(g_n, np.nan)
        first_t[has] = ut[ustart[has]]
        last_t[has] = ut[ustart[has] + cnt[has] - 1]
        # One look-back bucket for the whole batch.
        with np.errstate(invalid="ignore"):
            b_first = np.floor(first_t / bucket_len)
            b_last = np.floor(last_t / bucket_len)
        fine &= b_first == b_last
    cand = np.flatnonzero(fine)
    if cand.size == 0:
        return None
    # Longest first, so each column's annuli are a prefix; the few longest ones beyond
    # the point where a column would hold too few annuli go to sap_step.
    order = cand[np.argsort(-cnt[cand], kind="stable")]
    k = min(LOCKSTEP_MIN_GROUPS, order.size)
    cols = int(cnt[order[k - 1]])
    order = order[cnt[order] <= cols]
    lk = order.size
    if lk == 0 or cols == 0:
        return None
    return _Plan(
        order, cols, ug, ut, ux, cnt, ustart, b_first, last_ts0, s0, ds0, since0, raised0, bidx0
    )


@dataclass(slots=True)
class _Columns:
    """The lockstep's results per stepped annulus (in ``_Plan.order``): smoothed pressures,
    the batch's highest and lowest, the last time near the peak, the diagnostic episode,
    the bucket shift at the first reading and the new bucket, and ``trouble``: the annuli
    left to sap_step after all."""

    s: np.ndarray
    ds: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    last_high: np.ndarray
    since: np.ndarray
    raised: np.ndarray
    shift: np.ndarray
    b_new: np.ndarray
    trouble: np.ndarray


def _lockstep_columns(plan: _Plan, states: list[SapState], params: SapParams) -> _Columns:
    """Step every planned annulus one reading position ("column") at a time."""
    order, cols, ug, ut, ux = plan.order, plan.cols, plan.ug, plan.ut, plan.ux
    cnt, ustart, last_ts0 = plan.cnt, plan.ustart, plan.last_ts0
    m = ut.shape[0]
    lk = order.size
    # Weights of every usable reading, as sap_step computes them: -expm1(-(dt) / tau).
    prev_t = np.empty(m)
    prev_t[1:] = ut[:-1]
    firsts = ustart[cnt > 0]
    prev_t[firsts] = last_ts0[ug[firsts]]
    neg_dt = -(ut - prev_t)
    expm1 = math.expm1
    w1 = -np.fromiter(map(expm1, (neg_dt / params.smoothing_tau_s).tolist()), np.float64, m)
    w2 = -np.fromiter(
        map(expm1, (neg_dt / params.diagnostic_smoothing_tau_s).tolist()), np.float64, m
    )

    s = plan.s0[order].copy()
    ds = plan.ds0[order].copy()
    reset_s = np.isnan(s) | np.isnan(last_ts0[order])
    reset_ds = np.isnan(ds) | np.isnan(last_ts0[order])
    since = plan.since0[order].copy()
    raised = plan.raised0[order].astype(bool)
    # Bucket shift at the first reading: the kept buckets' highs give the starting peak.
    b_new = plan.b_first[order]
    bidx = plan.bidx0[order]
    shift = np.where(np.isnan(bidx), BUCKETS, b_new - np.nan_to_num(bidx))
    peak = np.full(lk, -math.inf)
    for r, g in enumerate(order.tolist()):
        sh = int(shift[r])
        if 0 <= sh < BUCKETS:
            kept = [v for v in states[g].bucket_highs[sh:] if v is not None]
            if kept:
                peak[r] = max(kept)
    hi = np.full(lk, -math.inf)
    lo = np.full(lk, math.inf)
    last_high = np.full(lk, np.nan)
    trouble = np.zeros(lk, dtype=bool)
    base = ustart[order]
    active = np.searchsorted(-cnt[order], -np.arange(1, cols + 1), side="right")  # cnt > j
    min_pre = params.min_pre_bleed_bar
    drop = params.bleed_drop_fraction
    thr = params.diagnostic_threshold_bar
    rearm = thr - params.diagnostic_rearm_band_bar
    sustain = params.diagnostic_sustain_s
    near_f = _NEAR_PEAK
    for j in range(cols):
        a = int(active[j])
        idx = base[:a] + j
        x = ux[idx]
        t = ut[idx]
        sv, dv = s[:a], ds[:a]
        if j == 0:
            sv = np.where(reset_s, x, sv + w1[idx] * (x - sv))
            dv = np.where(reset_ds, x, dv + w2[idx] * (x - dv))
        else:
            sv = sv + w1[idx] * (x - sv)
            dv = dv + w2[idx] * (x - dv)
        s[:a] = sv
        ds[:a] = dv
        pk = np.maximum(peak[:a], sv)
        peak[:a] = pk
        hi[:a] = np.maximum(hi[:a], sv)
        lo[:a] = np.minimum(lo[:a], sv)
        last_high[:a] = np.where(sv >= near_f * pk, t, last_high[:a])
        # A possible bleed (sap_step's first two tests): leave it to sap_step.
        trouble[:a] |= (pk >= min_pre) & (sv <= drop * pk)
        # Diagnostic: starting an episode is followed exactly; a raise goes to sap_step.
        above = dv >= thr
        sc = since[:a]
        rc = raised[:a]
        new_ep = above & np.isnan(sc)
        sc = np.where(new_ep, t, sc)
        rc = rc & ~new_ep
        trouble[:a] |= above & ~rc & (t - sc >= sustain)
        below = ~above & (dv < rearm)
        since[:a] = np.where(below, np.nan, sc)
        raised[:a] = rc & ~below
    # Signed zeros and non-finite values are where max/min could differ from sap_step's
    # comparisons: rare, leave them to it.
    trouble |= ~(np.isfinite(hi) & np.isfinite(lo) & np.isfinite(ds)) | (hi == 0) | (lo == 0)
    return _Columns(s, ds, hi, lo, last_high, since, raised, shift, b_new, trouble)


def _lockstep_states(
    plan: _Plan, c: _Columns, states: list[SapState], out: list[Any]
) -> np.ndarray:
    """Fill ``out`` with the new state of each annulus the lockstep stepped without
    trouble; returns the mask of the rest (for sap_step)."""
    order, cnt = plan.order, plan.cnt
    base = plan.ustart[order]
    scalar = np.ones(len(states), dtype=bool)
    t_end = plan.ut[base + cnt[order] - 1].tolist()
    none6: list[float | None] = [None] * (BUCKETS - 1)
    for g, bad, sh, b, sl, dl, h, lw, lh, sn, rs, te in zip(
        order.tolist(),
        c.trouble.tolist(),
        c.shift.tolist(),
        c.b_new.tolist(),
        c.s.tolist(),
        c.ds.tolist(),
        c.hi.tolist(),
        c.lo.tolist(),
        c.last_high.tolist(),
        c.since.tolist(),
        c.raised.tolist(),
        t_end,
        strict=True,
    ):
        if bad:
            continue
        st = states[g]
        if sh == 0:
            old_hi, old_lo = st.bucket_highs[-1], st.bucket_lows[-1]
            highs = (*st.bucket_highs[:-1], h if old_hi is None or h > old_hi else old_hi)
            lows = (*st.bucket_lows[:-1], lw if old_lo is None or lw < old_lo else old_lo)
        elif 0 < sh < BUCKETS:
            pad = [None] * (int(sh) - 1)
            highs = (*st.bucket_highs[int(sh) :], *pad, h)
            lows = (*st.bucket_lows[int(sh) :], *pad, lw)
        else:
            highs = (*none6, h)
            lows = (*none6, lw)
        out[g] = (
            SapState(
                last_ts=te,
                smoothed_bar=sl,
                bucket_index=int(b),
                bucket_highs=highs,
                bucket_lows=lows,
                last_high_ts=st.last_high_ts if lh != lh else lh,
                phase=st.phase,
                pre_bleed_bar=st.pre_bleed_bar,
                bleed_start_ts=st.bleed_start_ts,
                bleed_detected_ts=st.bleed_detected_ts,
                bleed_low_bar=st.bleed_low_bar,
                th_n=st.th_n,
                th_p0=st.th_p0,
                th_t0=st.th_t0,
                th_sp=st.th_sp,
                th_st=st.th_st,
                th_spp=st.th_spp,
                th_stt=st.th_stt,
                th_spt=st.th_spt,
                th_t_last=st.th_t_last,
                diag_since_ts=None if sn != sn else sn,
                diag_raised=rs,
                diag_smoothed_bar=dl,
            ),
            [],
        )
        scalar[g] = False
    return scalar
