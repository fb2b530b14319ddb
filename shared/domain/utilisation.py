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

:func:`levels_for_series` is the vectorised form for the stream worker: one time-ordered
series for one annulus, the same answer as folding :func:`next_level` over it, with no
Python loop per reading (each latch's value at a reading is that of the last set/reset
event at or before it, found with ``np.maximum.accumulate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.enums import UtilisationLevel

#: int8 codes for arrays, ordered by severity so codes compare like levels.
LEVEL_CODES: dict[UtilisationLevel, int] = {
    UtilisationLevel.unknown: 0,
    UtilisationLevel.normal: 1,
    UtilisationLevel.warning: 2,
    UtilisationLevel.exceeded: 3,
}
#: The inverse of :data:`LEVEL_CODES`: ``LEVEL_BY_CODE[code]``.
LEVEL_BY_CODE: dict[int, UtilisationLevel] = {code: lvl for lvl, code in LEVEL_CODES.items()}


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


def _latch(initial: bool, set_: np.ndarray, reset: np.ndarray) -> np.ndarray:
    """A set/reset latch over a series: its value after each element.

    ``set_`` and ``reset`` must be disjoint. The latch holds the kind of the last event at or
    before each element (``initial`` before the first event).
    """
    n = set_.shape[0]
    positions = np.arange(n, dtype=np.intp)
    last_event = np.maximum.accumulate(np.where(set_ | reset, positions, -1))
    return np.where(last_event >= 0, set_[np.maximum(last_event, 0)], initial)


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
    previous = UtilisationLevel(previous)
    band = thresholds.clear_band
    unknown = np.isnan(u)
    # NaN compares False, so the set masks skip it; it resets both latches (unknown behaves
    # as normal for what follows).
    warn = _latch(
        previous in (UtilisationLevel.warning, UtilisationLevel.exceeded),
        u >= thresholds.warning,
        (u < thresholds.warning - band) | unknown,
    )
    exceeded = _latch(
        previous is UtilisationLevel.exceeded,
        u >= thresholds.exceeded,
        (u < thresholds.exceeded - band) | unknown,
    )
    # exceeded implies warning (setting exceeded sets warning; resetting warning resets
    # exceeded), so normal + warning + exceeded is the level code.
    codes = LEVEL_CODES[UtilisationLevel.normal] + warn.astype(np.int8) + exceeded.astype(np.int8)
    codes = codes.astype(np.int8)
    codes[unknown] = LEVEL_CODES[UtilisationLevel.unknown]
    return codes
