"""MAASP: the maximum allowable annulus surface pressure, from the annulus' critical points.

Pure domain code: no I/O. Follows docs/domain.md "MAASP" (ISO 16530-1).

Each critical point carries the pressure its weakest element can take *at its depth*
(formation strength at the shoe, casing burst, tubing collapse, packer or wellhead rating).
The annulus fluid column adds its hydrostatic pressure on top of the surface pressure, so
the surface pressure that brings a point to its limit is::

    allowable_surface_i = safety_factor × pressure_limit_bar_i − fluid_gradient_bar_per_m × tvd_m_i
    MAASP               = max(0, min_i allowable_surface_i)
    limiting point      = the i that gives the minimum (the first one on a tie)

A point at depth 0 (wellhead or tree rating) is limited by its rating alone. An annulus with
no critical points has no MAASP (``None``): its readings are "unknown", never "normal".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shared.domain.units import BAR_PER_PSI as BAR_PER_PSI  # re-exported
from shared.domain.units import PSI_PER_BAR

#: 1 bar = 14.5037738 psi (and 1 psi = 0.0689475729 bar). Seed data and published examples
#: mix units; WIMS computes in bar and converts at the edges.

DEFAULT_SAFETY_FACTOR = 0.9

#: The annulus fluid gradient an annulus gets from its fluid_type when none is given, bar/m.
#: gradient = density x g, so bar/m = specific gravity x 0.0980665. Each is a typical value
#: at the heavy end of its fluid, because a heavier column gives a lower, safer MAASP:
#: brine 0.117 (SG 1.19, near-saturated NaCl, the usual packer fluid), mud 0.14 (SG 1.43,
#: a 12 ppg water-based mud left behind casing), gas 0.02 (about 200 kg/m3, dense natural
#: gas at annulus pressures of a few hundred bar). "other" has no default: its gradient must
#: be given. A measured gradient always beats these (docs/data-model.md).
DEFAULT_FLUID_GRADIENT_BAR_PER_M: dict[str, float] = {"gas": 0.02, "brine": 0.117, "mud": 0.14}


def default_fluid_gradient(fluid_type: str) -> float | None:
    """The default fluid_gradient_bar_per_m of a fluid type; None for "other"."""
    return DEFAULT_FLUID_GRADIENT_BAR_PER_M.get(str(fluid_type))


def psi_to_bar(psi: float) -> float:
    """Pressure in psi to bar."""
    return psi / PSI_PER_BAR


def bar_to_psi(bar: float) -> float:
    """Pressure in bar to psi."""
    return bar * PSI_PER_BAR


@dataclass(frozen=True, slots=True)
class CriticalPoint:
    """A depth in the annulus whose allowable pressure may limit MAASP.

    ``pressure_limit_bar`` is the allowable pressure at ``tvd_m`` (true vertical depth below
    the wellhead), before the safety factor. ``id`` is the database id, ``None`` for points
    derived on the fly.
    """

    id: int | None
    name: str
    tvd_m: float
    pressure_limit_bar: float


@dataclass(frozen=True, slots=True)
class MaaspOutcome:
    """Result of :func:`maasp`.

    ``allowable_surface_bar`` holds one value per critical point in input order, unclamped
    (a negative value means that point is already at its limit with the annulus open to
    atmosphere), so an engineer can see how close every point is, not only the governing one.
    """

    maasp_bar: float | None
    limiting_point: CriticalPoint | None
    allowable_surface_bar: tuple[float, ...]


def _check_point(point: CriticalPoint) -> None:
    if not math.isfinite(point.tvd_m):
        raise ValueError(f"critical point {point.name!r}: tvd_m must be finite, got {point.tvd_m}")
    if point.tvd_m < 0:
        raise ValueError(
            f"critical point {point.name!r}: tvd_m must be >= 0 (depth below the wellhead), "
            f"got {point.tvd_m}"
        )
    if not math.isfinite(point.pressure_limit_bar):
        raise ValueError(
            f"critical point {point.name!r}: pressure_limit_bar must be finite, "
            f"got {point.pressure_limit_bar}"
        )
    if point.pressure_limit_bar < 0:
        # A negative rating is a data-entry error; silently clamping it would hide it.
        raise ValueError(
            f"critical point {point.name!r}: pressure_limit_bar must be >= 0, "
            f"got {point.pressure_limit_bar}"
        )


def maasp(
    critical_points: Sequence[CriticalPoint],
    fluid_gradient_bar_per_m: float,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
) -> MaaspOutcome:
    """MAASP of one annulus and the critical point that governs it.

    ``fluid_gradient_bar_per_m`` is the hydrostatic gradient of the annulus fluid (e.g. about
    0.0981 bar/m for fresh water); ``safety_factor`` multiplies every limit and must lie in
    (0, 1]. No points gives ``maasp_bar=None`` and ``limiting_point=None``.

    Raises ValueError for a negative or non-finite depth or limit, a negative or non-finite
    gradient, or a safety factor outside (0, 1]: bad inputs must not become a plausible MAASP.
    """
    if not math.isfinite(safety_factor) or not 0.0 < safety_factor <= 1.0:
        raise ValueError(f"safety_factor must be in (0, 1], got {safety_factor}")
    if not math.isfinite(fluid_gradient_bar_per_m):
        raise ValueError(f"fluid_gradient_bar_per_m must be finite, got {fluid_gradient_bar_per_m}")
    if fluid_gradient_bar_per_m < 0:
        raise ValueError(f"fluid_gradient_bar_per_m must be >= 0, got {fluid_gradient_bar_per_m}")
    for point in critical_points:
        _check_point(point)

    allowable = tuple(
        safety_factor * p.pressure_limit_bar - fluid_gradient_bar_per_m * p.tvd_m
        for p in critical_points
    )
    if not allowable:
        return MaaspOutcome(maasp_bar=None, limiting_point=None, allowable_surface_bar=())
    # min() over indices keeps the first point on a tie, so the result is deterministic.
    i = min(range(len(allowable)), key=allowable.__getitem__)
    return MaaspOutcome(
        maasp_bar=max(0.0, allowable[i]),
        limiting_point=critical_points[i],
        allowable_surface_bar=allowable,
    )
