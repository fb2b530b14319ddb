"""Deviation survey: true vertical depth from measured depth by the minimum-curvature method.

Pure domain code: no I/O. A survey is a list of stations (measured depth MD, inclination
from vertical, azimuth from north, both in degrees). Between two stations the well path is
taken to be the circular arc that joins their directions (minimum curvature; Taylor and
Mason, SPE 3362, 1972; the method of the industry's survey calculations)::

    cos β = cos(I₂ − I₁) − sin I₁ · sin I₂ · (1 − cos(A₂ − A₁))     (dogleg angle β)
    RF    = (2 / β) · tan(β / 2)            (ratio factor; 1 when β = 0)
    ΔTVD  = ΔMD / 2 · (cos I₁ + cos I₂) · RF
    ΔN    = ΔMD / 2 · (sin I₁ cos A₁ + sin I₂ cos A₂) · RF
    ΔE    = ΔMD / 2 · (sin I₁ sin A₁ + sin I₂ sin A₂) · RF

TVD at a depth between two stations lies on the same arc: the direction there is the
spherical interpolation of the two station directions at the fraction of the course length,
and the course from the upper station to that depth is computed as above. Below the last
station the path continues straight in the last station's direction. A well without a
survey is vertical: TVD = MD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True, slots=True)
class Station:
    md_m: float
    inclination_deg: float
    azimuth_deg: float


class SurveyError(ValueError):
    """A station that cannot be part of a survey; names the station index and the field."""

    def __init__(self, index: int, field: str, reason: str) -> None:
        super().__init__(f"station {index}: {field} {reason}")
        self.index = index
        self.field = field
        self.reason = reason


def validate_stations(stations: Sequence[Station]) -> tuple[Station, ...]:
    """Checks the stations and returns them with a vertical tie-in at MD 0 when the first
    station lies deeper (the wellhead is where every survey starts).

    Raises :class:`SurveyError` for a non-finite value, MD below 0 or not strictly
    increasing, inclination outside 0–180° or azimuth outside 0–360°.
    """
    previous: float | None = None
    for i, st in enumerate(stations):
        for field in ("md_m", "inclination_deg", "azimuth_deg"):
            if not math.isfinite(getattr(st, field)):
                raise SurveyError(i, field, "must be a finite number")
        if st.md_m < 0:
            raise SurveyError(i, "md_m", f"must be >= 0, got {st.md_m}")
        if previous is not None and st.md_m <= previous:
            raise SurveyError(
                i, "md_m", f"must be greater than the previous station's ({previous} m)"
            )
        if not 0.0 <= st.inclination_deg <= 180.0:
            raise SurveyError(
                i, "inclination_deg", f"must be within 0-180, got {st.inclination_deg}"
            )
        if not 0.0 <= st.azimuth_deg <= 360.0:
            raise SurveyError(i, "azimuth_deg", f"must be within 0-360, got {st.azimuth_deg}")
        previous = st.md_m
    out = tuple(stations)
    if not out or out[0].md_m > 0:
        out = (Station(0.0, 0.0, 0.0), *out)
    return out


def _directions(inc_deg: NDArray[np.float64], azi_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit tangent vectors (north, east, down), one row per station."""
    inc, azi = np.radians(inc_deg), np.radians(azi_deg)
    return np.stack([np.sin(inc) * np.cos(azi), np.sin(inc) * np.sin(azi), np.cos(inc)], axis=-1)


def _ratio_factor(beta: NDArray[np.float64]) -> NDArray[np.float64]:
    # tan(β/2)·2/β → 1 as β → 0; the series avoids 0/0 on straight courses.
    small = beta < 1e-6
    safe = np.where(small, 1.0, beta)
    return np.where(small, 1.0 + beta**2 / 12.0, 2.0 / safe * np.tan(safe / 2.0))


def _course(
    d1: NDArray[np.float64], d2: NDArray[np.float64], dmd: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Displacement (north, east, down) along minimum-curvature arcs from direction d1 to d2
    over course lengths dmd."""
    cos_beta = np.clip(np.sum(d1 * d2, axis=-1), -1.0, 1.0)
    beta = np.arccos(cos_beta)
    return (dmd / 2.0 * _ratio_factor(beta))[..., None] * (d1 + d2)


@dataclass(frozen=True)
class Trajectory:
    """Positions at the survey stations (tie-in included), metres from the wellhead."""

    md_m: NDArray[np.float64]
    tvd_m: NDArray[np.float64]
    north_m: NDArray[np.float64]
    east_m: NDArray[np.float64]
    directions: NDArray[np.float64]

    def tvd_at(self, md: ArrayLike) -> NDArray[np.float64]:
        """TVD at any measured depth(s) >= 0, on the minimum-curvature arc between the
        stations around it (straight on below the last station)."""
        mds = np.atleast_1d(np.asarray(md, dtype=float))
        if np.any(~np.isfinite(mds)) or np.any(mds < 0):
            raise ValueError("measured depth must be finite and >= 0")
        i = np.clip(np.searchsorted(self.md_m, mds, side="right") - 1, 0, len(self.md_m) - 1)
        d1 = self.directions[i]
        last = i == len(self.md_m) - 1
        j = np.minimum(i + 1, len(self.md_m) - 1)
        d2_station = self.directions[j]
        span = np.where(last, 1.0, self.md_m[j] - self.md_m[i])
        t = np.where(last, 0.0, (mds - self.md_m[i]) / span)
        d_at = _slerp(d1, d2_station, t)
        step = _course(d1, d_at, mds - self.md_m[i])
        return self.tvd_m[i] + step[:, 2]


def _slerp(
    d1: NDArray[np.float64], d2: NDArray[np.float64], t: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The direction a fraction t along the great circle from d1 to d2 (the arc's tangent)."""
    beta = np.arccos(np.clip(np.sum(d1 * d2, axis=-1), -1.0, 1.0))
    small = beta < 1e-9
    sin_b = np.where(small, 1.0, np.sin(beta))
    w1 = np.where(small, 1.0 - t, np.sin((1.0 - t) * beta) / sin_b)
    w2 = np.where(small, t, np.sin(t * beta) / sin_b)
    out = w1[:, None] * d1 + w2[:, None] * d2
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def minimum_curvature(stations: Sequence[Station]) -> Trajectory:
    """The well path through validated stations (see :func:`validate_stations`)."""
    ordered = validate_stations(stations)
    md = np.array([s.md_m for s in ordered], dtype=float)
    dirs = _directions(
        np.array([s.inclination_deg for s in ordered]), np.array([s.azimuth_deg for s in ordered])
    )
    steps = _course(dirs[:-1], dirs[1:], np.diff(md))
    pos = np.vstack([np.zeros(3), np.cumsum(steps, axis=0)])
    return Trajectory(
        md_m=md, tvd_m=pos[:, 2], north_m=pos[:, 0], east_m=pos[:, 1], directions=dirs
    )


def tvd_at(stations: Sequence[Station], md_m: float) -> float:
    """TVD of one measured depth; a well without stations is vertical (TVD = MD)."""
    if not stations:
        if not math.isfinite(md_m) or md_m < 0:
            raise ValueError("measured depth must be finite and >= 0")
        return float(md_m)
    return float(minimum_curvature(stations).tvd_at(md_m)[0])
