"""30 CFR 250.521 re-test: a diagnostic test is due again when the annulus pressure has risen
more than 13.8 bar (200 psig) above the pressure at the last diagnostic test.

Pure domain code: no I/O, no clock. docs/domain.md "Diagnostic re-test (30 CFR 250.521)".

Source: 30 CFR 250.521-522 (casing pressure management on the US OCS): after a casing
diagnostic test, a casing pressure that increases by more than 200 psig over the pressure of
that test calls for a new diagnostic test.

The diagnostic test WIMS knows is the bleed-down/build-up its SAP detector recognises in an
annulus' readings (the ``sap_detected`` finding; shared/domain/sap.py): the test starts when
the bleed-down starts (its ``episode_start``), and the pressure at the test is the level the
annulus held before it was bled (the caller takes the median of the good readings over the
30 minutes before the bleed began: the SAP detector recognises a bleed only from a level held
that long).

Rule: given the test (time, pressure) and the good readings after it in event time, the re-test
is due at the first reading at which the pressure has stayed strictly above
``test pressure + rise_bar`` for ``sustain_s`` (every good reading since the first one above
the limit is above it). ``sustain_s`` (WIMS default 30 min) keeps a single spike or a short
operation from opening a test; 0 judges the first reading above the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: 200 psig in bar (200 x 0.0689476 = 13.79 bar), as 30 CFR 250.521 states it.
RETEST_RISE_BAR = 13.8
#: WIMS default: how long the pressure must stay above the limit, event-time seconds.
RETEST_SUSTAIN_S = 1800.0


@dataclass(frozen=True, slots=True)
class RetestDue:
    """The re-test finding. ``ts`` and ``above_since`` are event time (epoch seconds)."""

    ts: float
    above_since: float
    pressure_bar: float
    test_pressure_bar: float
    limit_bar: float

    @property
    def rise_bar(self) -> float:
        return self.pressure_bar - self.test_pressure_bar


def retest_due(
    test_ts: float,
    test_pressure_bar: float,
    ts: ArrayLike,
    pressure: ArrayLike,
    rise_bar: float = RETEST_RISE_BAR,
    sustain_s: float = RETEST_SUSTAIN_S,
) -> RetestDue | None:
    """The first time the re-test is due after the test at ``test_ts``, or None.

    ``ts``/``pressure`` are good readings (any order; non-finite ones and those not after the
    test are ignored).
    """
    if not (math.isfinite(rise_bar) and rise_bar > 0):
        raise ValueError(f"rise_bar must be > 0, got {rise_bar}")
    if not (math.isfinite(sustain_s) and sustain_s >= 0):
        raise ValueError(f"sustain_s must be >= 0, got {sustain_s}")
    t = np.asarray(ts, dtype=np.float64)
    p = np.asarray(pressure, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(p) & (t > test_ts)
    t, p = t[keep], p[keep]
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    limit = test_pressure_bar + rise_bar
    above = p > limit
    if not above.any():
        return None
    # Start of the run of readings above the limit that each reading belongs to.
    idx = np.arange(t.size)
    run_start = np.maximum.accumulate(
        np.where(above, np.where(np.r_[False, above[:-1]], 0, idx), 0)
    )
    held = above & (t - t[run_start] >= sustain_s)
    if not held.any():
        return None
    k = int(np.argmax(held))
    return RetestDue(
        ts=float(t[k]),
        above_since=float(t[run_start[k]]),
        pressure_bar=float(p[k]),
        test_pressure_bar=float(test_pressure_bar),
        limit_bar=float(limit),
    )
