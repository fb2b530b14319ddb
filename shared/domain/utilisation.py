"""Annulus utilisation (pressure / MAASP) and its alert level, with hysteresis.

Pure domain code: no I/O. Follows docs/domain.md "Utilisation levels and hysteresis": warning at >= 80 %
of MAASP, exceeded at >= 100 %, and a raised level clears only when utilisation falls
``clear_band`` (5 percentage points) below the threshold that raised it, so a reading that
hovers at a limit does not make the alert flap.

Each raised level is its own latch: *warning* is set at ``util >= warning`` and reset at
``util < warning - clear_band``; *exceeded* likewise with its own threshold. The level is
the highest latch that is set. So from *exceeded*, a utilisation of 0.90 clears exceeded
(0.90 < 0.95) but keeps warning (0.90 >= 0.75): *warning*; 0.77 also lands on *warning*
(an alert that was exceeded has, a fortiori, raised warning, and 0.77 has not cleared it);
0.50 lands on *normal*. A missing utilisation (no MAASP, or no valid reading) is *unknown*,
and the latches start afresh after it, as from *normal*.

:func:`next_level` is the rule (the reference). :func:`levels_for_segments` is its
vectorised form for the stream worker, for many annuli's time-ordered series at once, and
:func:`levels_for_series` for one: the same answer as folding :func:`next_level` over each
series (property-tested), with no Python loop per reading (each latch's value at a reading
is that of the last set/reset event at or before it, found with ``np.maximum.accumulate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.contracts.enums import UtilisationLevel

#: int8 codes for arrays, ordered by severity so codes compare like levels.
LEVEL_CODES: dict[UtilisationLevel, int] = {
    UtilisationLevel.unknown: 0,
    UtilisationLevel.normal: 1,
    UtilisationLevel.warning: 2,
    UtilisationLevel.exceeded: 3,
}
#: The inverse of :data:`LEVEL_CODES`: ``LEVEL_BY_CODE[code]``.
LEVEL_BY_CODE: dict[int, UtilisationLevel] = {code: lvl for lvl, code in LEVEL_CODES.items()}
UNKNOWN = LEVEL_CODES[UtilisationLevel.unknown]
NORMAL = LEVEL_CODES[UtilisationLevel.normal]
WARNING = LEVEL_CODES[UtilisationLevel.warning]
EXCEEDED = LEVEL_CODES[UtilisationLevel.exceeded]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Utilisation thresholds as fractions of MAASP (WIMS defaults, configurable per annulus).

    ``warning`` and ``exceeded`` raise a level when utilisation reaches them (>=);
    ``clear_band`` is how far below a threshold utilisation must fall (strictly) to clear it.
    """

    warning: float = 0.8
    exceeded: float = 1.0
    clear_band: float = 0.05

    def __post_init__(self) -> None:
        for name in ("warning", "exceeded", "clear_band"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"Thresholds.{name} must be finite, got {value}")
        if not 0.0 < self.warning < self.exceeded:
            raise ValueError(
                f"Thresholds need 0 < warning < exceeded, got warning={self.warning}, "
                f"exceeded={self.exceeded}"
            )
        if not 0.0 <= self.clear_band < self.warning:
            # A band as wide as the warning threshold would make warning impossible to clear.
            raise ValueError(
                f"Thresholds need 0 <= clear_band < warning, got clear_band={self.clear_band}, "
                f"warning={self.warning}"
            )


DEFAULT_THRESHOLDS = Thresholds()


def utilisation(pressure_bar: float, maasp_bar: float | None) -> float | None:
    """Measured pressure as a fraction of MAASP.

    ``None`` when MAASP is unknown (``None`` or NaN) or the pressure is NaN: the level is then
    "unknown", never "normal". A MAASP of 0 (or below, which :func:`shared.domain.maasp.maasp`
    never returns) means the annulus may hold no surface pressure at all: any positive
    pressure is infinitely over it (``math.inf``, so *exceeded*) and zero or less is 0.0.
    """
    if maasp_bar is None or math.isnan(maasp_bar) or math.isnan(pressure_bar):
        return None
    if maasp_bar <= 0.0:
        return math.inf if pressure_bar > 0.0 else 0.0
    return pressure_bar / maasp_bar


def utilisation_array(pressure_bar: np.ndarray, maasp_bar: np.ndarray) -> np.ndarray:
    """Vectorised :func:`utilisation`: NaN where MAASP or pressure is NaN (unknown).

    ``maasp_bar`` may be a scalar or an array broadcastable to ``pressure_bar``.
    """
    p = np.asarray(pressure_bar, dtype=np.float64)
    m = np.asarray(maasp_bar, dtype=np.float64)
    p, m = np.broadcast_arrays(p, m)
    positive = m > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = p / np.where(positive, m, 1.0)
    out = np.where(positive, ratio, np.where(p > 0.0, np.inf, 0.0))
    out[np.isnan(m) | np.isnan(p)] = np.nan
    return out


def level_for(util: float | None, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> UtilisationLevel:
    """The level a utilisation qualifies for on its own, without hysteresis."""
    return next_level(UtilisationLevel.normal, util, thresholds)


def levels_for(utils: np.ndarray, warning: np.ndarray, exceeded: np.ndarray) -> np.ndarray:
    """Vectorised :func:`level_for`: the level code (int8) of each utilisation on its own,
    without hysteresis, each against its own thresholds (arrays broadcastable to ``utils``,
    from valid :class:`Thresholds`). NaN is *unknown*; ``inf`` is *exceeded*.

    For the fleet, which judges thousands of annuli at once from their latest readings."""
    u = np.asarray(utils, dtype=np.float64)
    codes = (
        LEVEL_CODES[UtilisationLevel.normal]
        + (u >= np.asarray(warning)).astype(np.int8)
        + (u >= np.asarray(exceeded)).astype(np.int8)
    ).astype(np.int8)
    codes[np.isnan(u)] = LEVEL_CODES[UtilisationLevel.unknown]
    return codes


def next_level(
    previous: UtilisationLevel, util: float | None, thresholds: Thresholds
) -> UtilisationLevel:
    """The level after one reading, given the level before it (see the module docstring).

    ``util`` None or NaN gives *unknown*; from *unknown* the next reading is judged as from
    *normal*.
    """
    if util is None or math.isnan(util):
        return UtilisationLevel.unknown
    previous = UtilisationLevel(previous)
    band = thresholds.clear_band
    held_exceeded = previous is UtilisationLevel.exceeded and util >= thresholds.exceeded - band
    if util >= thresholds.exceeded or held_exceeded:
        return UtilisationLevel.exceeded
    held_warning = (
        previous in (UtilisationLevel.warning, UtilisationLevel.exceeded)
        and util >= thresholds.warning - band
    )
    if util >= thresholds.warning or held_warning:
        return UtilisationLevel.warning
    return UtilisationLevel.normal


def _latch(
    set_: np.ndarray, reset: np.ndarray, firsts: np.ndarray, initial: np.ndarray
) -> np.ndarray:
    """A set/reset latch over concatenated series: its value (int8 0/1) after each element.

    ``firsts``: where each series starts; ``initial``: each latch's value before its series.
    ``set_`` and ``reset`` must be disjoint. A latch holds the kind of the last event at or
    before each element, or its initial value before its first event.
    """
    n = set_.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    v = np.full(n, -1, dtype=np.int8)
    v[reset] = 0
    v[set_] = 1
    at_first = v[firsts]
    v[firsts] = np.where(at_first >= 0, at_first, np.asarray(initial).astype(np.int8))
    last = np.maximum.accumulate(np.where(v >= 0, np.arange(n), -1))
    return v[last]


def levels_for_segments(
    utils: np.ndarray,
    firsts: np.ndarray,
    previous: np.ndarray,
    warning: np.ndarray | float,
    exceeded: np.ndarray | float,
    clear_band: np.ndarray | float,
) -> np.ndarray:
    """Level codes (int8, see :data:`LEVEL_CODES`) after each reading of many annuli's
    series at once, each the fold of :func:`next_level` over its own series.

    ``utils`` are the series one after the other (each time-ordered; NaN is unknown),
    ``firsts`` where each starts (every series non-empty), ``previous`` each one's level
    code before its first reading. The thresholds are given per reading (or one for all):
    the fields of each annulus' :class:`Thresholds`. No Python loop per reading: each
    raised level is a set/reset latch (:func:`_latch`).
    """
    u = np.asarray(utils, dtype=np.float64).reshape(-1)
    prev = np.asarray(previous, dtype=np.int8)
    unknown = np.isnan(u)
    with np.errstate(invalid="ignore"):
        # NaN compares False, so the set masks skip it; it resets both latches (unknown
        # behaves as normal for what follows).
        w_set = u >= warning
        w_reset = (u < np.subtract(warning, clear_band)) | unknown
        e_set = u >= exceeded
        e_reset = (u < np.subtract(exceeded, clear_band)) | unknown
    warn = _latch(w_set, w_reset, firsts, prev >= WARNING)
    exc = _latch(e_set, e_reset, firsts, prev == EXCEEDED)
    # exceeded implies warning (setting exceeded sets warning; resetting warning resets
    # exceeded), so normal + warning + exceeded is the level code.
    codes = (NORMAL + warn + exc).astype(np.int8)
    codes[unknown] = UNKNOWN
    return codes


def levels_for_series(
    previous: UtilisationLevel, utils: np.ndarray, thresholds: Thresholds
) -> np.ndarray:
    """Level codes (int8, see :data:`LEVEL_CODES`) after each reading of one annulus' series.

    ``utils`` is time-ordered; NaN is unknown. ``previous`` is the level before the first
    reading. Equal to applying :func:`next_level` sequentially, in O(n) numpy operations.
    """
    u = np.asarray(utils, dtype=np.float64).reshape(-1)
    if u.size == 0:
        return np.empty(0, dtype=np.int8)
    return levels_for_segments(
        u,
        np.zeros(1, dtype=np.intp),
        np.array([LEVEL_CODES[UtilisationLevel(previous)]], dtype=np.int8),
        thresholds.warning,
        thresholds.exceeded,
        thresholds.clear_band,
    )
