"""Annulus communication: one annulus' pressure answering a bleed-down or build-up of another
annulus of the same well, in event time.

Pure domain code: no I/O, no clock. docs/domain.md "Annulus communication" describes the rule.

Why it matters (API RP 90-1, ISO 16530-1 "annulus pressure management"): a bleed-down/build-up
of one annulus is the diagnostic test that shows whether the barrier between two annuli holds.
When bleeding (or pressuring) annulus A moves the pressure of annulus B the same way, fluid
or pressure passes between them: the barrier between A and B (tubing, casing, a hanger seal)
leaks, and the MAASP of each annulus no longer stands on its own.

Method
------
The detector takes the good readings of two annuli of one well, a *source* and a
*responder*, each sorted by event time (epoch seconds), and judges every source step:

1. **Source steps.** For each source reading at time t, the change over the step window,
   ``d(t) = p_s(t) - p_s(t - step_window_s)`` (the earlier value linearly interpolated), is a
   step when ``|d(t)| >= step_min_bar``: a bleed-down (d < 0) or a build-up (d > 0) that
   happened within ``step_window_s``. Consecutive readings that are steps of one sign are one
   step; it is placed at the reading of largest ``|d|`` (``t_end``), it started at
   ``t_start = t_end - step_window_s`` and its size is ``d(t_end)``.
2. **The responder's own course.** A straight line (least squares) is fitted to the
   responder's readings over ``baseline_s`` before ``t_start``: what the responder was doing
   anyway (steady, or a slow thermal drift). At least ``min_points`` readings are needed.
3. **Response.** The responder's residual from that line is averaged over a moving window of
   ``min_points`` readings, over ``[t_start, t_end + response_delay_s]``. The response is the
   residual of largest magnitude in the source step's direction. The responder communicates
   when ``response >= max(response_min_bar, response_min_ratio * |d|)`` in that direction.
   A step is judged only once the responder's readings reach ``t_end + response_delay_s``.

Thermal co-movement (both annuli warming or cooling with the well, e.g. after a start-up or a
shut-in) is not a communication: it is slow, so the source shows no step (a change of
``step_min_bar`` within ``step_window_s``), and any drift already under way at a step is
part of the responder's fitted course and leaves no residual.

Parameters (:class:`CommunicationParams`, WIMS defaults, configurable)
---------------------------------------------------------------------
- ``step_window_s`` = 900 s: an operator's bleed-down or build-up changes the pressure within
  minutes; 15 min contains it and is too short for a thermal change to reach ``step_min_bar``.
- ``step_min_bar`` = 5 bar: the smallest step judged (gauge noise and small operations are
  not).
- ``baseline_s`` = 3600 s: the responder's course is fitted over the hour before the step.
- ``response_delay_s`` = 3600 s: the response is looked for until an hour after the step (a
  leak through a small path takes time to move the other annulus).
- ``response_min_bar`` = 1 bar and ``response_min_ratio`` = 0.1: the response must be at
  least 1 bar and at least 10 % of the step.
- ``min_points`` = 5: fewest responder readings in the baseline; also the averaging window.

Limits: two annuli bled at the same time are each judged to answer the other; a response that
takes longer than ``response_delay_s`` is missed; a step whose baseline hour has fewer than
``min_points`` responder readings is not judged.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True, slots=True)
class CommunicationParams:
    """Detector parameters; see the module docstring for what each one does."""

    step_window_s: float = 900.0
    step_min_bar: float = 5.0
    baseline_s: float = 3600.0
    response_delay_s: float = 3600.0
    response_min_bar: float = 1.0
    response_min_ratio: float = 0.1
    min_points: int = 5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"CommunicationParams.{f.name} must be > 0, got {value}")
        if self.min_points < 2:
            raise ValueError(f"min_points must be >= 2, got {self.min_points}")

    @property
    def lookback_s(self) -> float:
        """Event time a judgement needs before the newest reading: baseline, step, response."""
        return self.baseline_s + 2 * self.step_window_s + self.response_delay_s


DEFAULT_COMMUNICATION_PARAMS = CommunicationParams()


@dataclass(frozen=True, slots=True)
class Communication:
    """The responder answered a source step. Times are event time (epoch seconds), pressures
    bar. ``step_bar`` is signed (negative: a bleed-down), ``response_bar`` too (same sign)."""

    step_start: float
    step_end: float
    step_bar: float
    response_bar: float

    @property
    def direction(self) -> str:
        return "bleed-down" if self.step_bar < 0 else "build-up"


def _as_series(ts: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(ts, dtype=np.float64)
    x = np.asarray(p, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(x)
    t, x = t[keep], x[keep]
    order = np.argsort(t, kind="stable")
    return t[order], x[order]


def source_steps(
    ts: ArrayLike, p: ArrayLike, params: CommunicationParams = DEFAULT_COMMUNICATION_PARAMS
) -> list[tuple[float, float]]:
    """The steps of one series as (t_end, signed size), oldest first (method step 1)."""
    t, x = _as_series(ts, p)
    if t.size < 2:
        return []
    earlier = t - params.step_window_s
    judged = earlier >= t[0]  # a full window of data behind the reading
    d = np.where(judged, x - np.interp(earlier, t, x), 0.0)
    sign = np.where(np.abs(d) >= params.step_min_bar, np.sign(d), 0.0)
    steps: list[tuple[float, float]] = []
    # Runs of one non-zero sign: each run is one step, at its largest |d|.
    edges = np.flatnonzero(np.diff(np.concatenate(([0.0], sign, [0.0]))) != 0)
    for start, stop in itertools.pairwise(edges):
        if sign[start] == 0.0:
            continue
        k = start + int(np.argmax(np.abs(d[start:stop])))
        steps.append((float(t[k]), float(d[k])))
    return steps


def detect_communication(
    source_ts: ArrayLike,
    source_p: ArrayLike,
    responder_ts: ArrayLike,
    responder_p: ArrayLike,
    params: CommunicationParams = DEFAULT_COMMUNICATION_PARAMS,
) -> list[Communication]:
    """Every source step the responder answered (method steps 1-3), oldest first.

    Inputs are good readings only (bad ones dropped by the caller), in any order; non-finite
    values are ignored. A step the responder's data does not yet cover is not judged.
    """
    rt, rx = _as_series(responder_ts, responder_p)
    found: list[Communication] = []
    if rt.size < params.min_points:
        return found
    w = params.min_points
    for t_end, size in source_steps(source_ts, source_p, params):
        t_start = t_end - params.step_window_s
        until = t_end + params.response_delay_s
        if rt[-1] < until:
            continue  # the response window is not complete yet: judged by a later call
        base = (rt >= t_start - params.baseline_s) & (rt < t_start)
        if np.count_nonzero(base) < params.min_points:
            continue
        slope, intercept = np.polyfit(rt[base] - t_start, rx[base], 1)
        win = (rt >= t_start) & (rt <= until)
        if np.count_nonzero(win) < w:
            continue
        residual = rx[win] - (intercept + slope * (rt[win] - t_start))
        averaged = np.convolve(residual, np.full(w, 1.0 / w), mode="valid")
        response = float(averaged.min() if size < 0 else averaged.max())
        needed = max(params.response_min_bar, params.response_min_ratio * abs(size))
        if math.copysign(1.0, size) * response >= needed:
            found.append(Communication(t_start, t_end, size, response))
    return found
