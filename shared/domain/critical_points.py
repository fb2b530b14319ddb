"""Critical points derived from a well's architecture (ISO/TS 16530-2 point list).

Pure domain code: no I/O. Each function below derives one kind of point and returns the
pressure the element can take *at its depth* (``pressure_limit_bar``), the quantity
:func:`shared.domain.maasp.maasp` works with::

    allowable_surface = safety_factor × pressure_limit_bar − annulus_gradient × tvd

So a rating that holds a *differential* pressure (casing burst, tubing collapse, packer) is
turned into a limit at depth by adding what pushes back on the other side of the element at
that depth: the back-up fluid column behind a casing, the lowest pressure inside the tubing.
With a safety factor of 1 the familiar forms follow, e.g. for tubing collapse
``MAASP = collapse − tvd × (annulus gradient − tubing gradient)``.

Ratings may be derated for wear and corrosion by a percentage of the string
(``rating × (1 − derating_percent / 100)``). Each point records its inputs, its formula and
the source of the rule, so an engineer can see why a limit is what it is. Depths are metres,
pressures bar, gradients bar/m.

Sources: ISO/TS 16530-2:2014 (well integrity for the operational phase: the MAASP point list
of the A annulus — SSSV, accessories, packer, tubing collapse, liner hanger, production
casing burst, formation, wellhead and tree — and of the outer annuli — formation at the
shoe or top of cement, inner casing collapse, outer casing burst, wellhead); API RP 90
(annular casing pressure management: burst and collapse of the casing strings bounding an
annulus); the drilling leak-off relation (MAASP = (leak-off equivalent − mud) × shoe TVD)
for formation strength.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.contracts.enums import CriticalPointType

ISO_16530_2 = "ISO/TS 16530-2:2014, MAASP critical points"
API_RP_90 = "API RP 90, annular casing pressure management (burst/collapse of bounding strings)"
LEAK_OFF = "leak-off / formation-integrity test: formation strength = LOT gradient × shoe TVD"


@dataclass(frozen=True, slots=True)
class DerivedPoint:
    """A critical point proposed from the architecture, with why it has its limit."""

    kind: str  # e.g. "tubing_collapse_at_packer": one per element and depth
    point_type: CriticalPointType
    label: str
    depth_md: float
    tvd_m: float
    pressure_limit_bar: float
    formula: str
    source: str
    inputs: dict[str, float] = field(default_factory=dict)


def _derated(rating_bar: float, derating_percent: float) -> float:
    if not 0.0 <= derating_percent < 100.0:
        raise ValueError(f"derating_percent must be within [0, 100), got {derating_percent}")
    return rating_bar * (1.0 - derating_percent / 100.0)


def _check(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")


def tubing_collapse(
    kind: str,
    label: str,
    depth_md: float,
    tvd_m: float,
    collapse_limit_bar: float,
    tubing_gradient_bar_per_m: float,
    tubing_min_pressure_bar: float = 0.0,
    derating_percent: float = 0.0,
) -> DerivedPoint:
    """Tubing (or SSSV / accessory) collapse in the A annulus.

    Formula: ``limit = collapse × (1 − derating/100) + p_tubing_min + g_tubing × tvd``: the
    annulus may push on the tubing by its collapse rating more than the least pressure
    inside it (a depleted or gas-filled tubing at its minimum wellhead pressure).
    MAASP (SF 1) = collapse + p_tubing_min − tvd × (g_annulus − g_tubing).
    Source: ISO/TS 16530-2 (A annulus: tubing, SSSV and accessory collapse).
    """
    _check(tvd_m=tvd_m, collapse_limit_bar=collapse_limit_bar)
    _check(tubing_gradient_bar_per_m=tubing_gradient_bar_per_m)
    _check(tubing_min_pressure_bar=tubing_min_pressure_bar)
    rating = _derated(collapse_limit_bar, derating_percent)
    return DerivedPoint(
        kind=kind,
        point_type=CriticalPointType.inner_string_collapse,
        label=label,
        depth_md=depth_md,
        tvd_m=tvd_m,
        pressure_limit_bar=rating + tubing_min_pressure_bar + tubing_gradient_bar_per_m * tvd_m,
        formula="collapse × (1 − derating/100) + p_tubing_min + g_tubing × tvd",
        source=ISO_16530_2,
        inputs={
            "collapse_limit_bar": collapse_limit_bar,
            "derating_percent": derating_percent,
            "tubing_min_pressure_bar": tubing_min_pressure_bar,
            "tubing_gradient_bar_per_m": tubing_gradient_bar_per_m,
            "tvd_m": tvd_m,
        },
    )


def packer_rating(
    depth_md: float, tvd_m: float, packer_rating_bar: float, below_gradient_bar_per_m: float
) -> DerivedPoint:
    """The production packer's differential rating, seen from the A annulus above it.

    Formula: ``limit = packer_rating + g_below × tvd``: the packer holds its rating over
    the pressure below it, taken at its lowest (the tubing fluid column, no surface
    pressure). Source: ISO/TS 16530-2 (A annulus: packer element rating).
    """
    _check(tvd_m=tvd_m, packer_rating_bar=packer_rating_bar)
    _check(below_gradient_bar_per_m=below_gradient_bar_per_m)
    return DerivedPoint(
        kind="packer_rating",
        point_type=CriticalPointType.packer,
        label="packer rating",
        depth_md=depth_md,
        tvd_m=tvd_m,
        pressure_limit_bar=packer_rating_bar + below_gradient_bar_per_m * tvd_m,
        formula="packer_rating + g_below × tvd",
        source=ISO_16530_2,
        inputs={
            "packer_rating_bar": packer_rating_bar,
            "below_gradient_bar_per_m": below_gradient_bar_per_m,
            "tvd_m": tvd_m,
        },
    )


def liner_hanger(
    depth_md: float, tvd_m: float, hanger_rating_bar: float, backup_gradient_bar_per_m: float
) -> DerivedPoint:
    """The liner hanger (liner-top seal) exposed to the A annulus.

    Formula: ``limit = hanger_rating + g_backup × tvd``: the seal holds its rating over the
    back-up column behind it. Source: ISO/TS 16530-2 (A annulus: liner hanger).
    """
    _check(tvd_m=tvd_m, hanger_rating_bar=hanger_rating_bar)
    _check(backup_gradient_bar_per_m=backup_gradient_bar_per_m)
    return DerivedPoint(
        kind="liner_hanger",
        point_type=CriticalPointType.liner_hanger,
        label="liner hanger",
        depth_md=depth_md,
        tvd_m=tvd_m,
        pressure_limit_bar=hanger_rating_bar + backup_gradient_bar_per_m * tvd_m,
        formula="hanger_rating + g_backup × tvd",
        source=ISO_16530_2,
        inputs={
            "hanger_rating_bar": hanger_rating_bar,
            "backup_gradient_bar_per_m": backup_gradient_bar_per_m,
            "tvd_m": tvd_m,
        },
    )


def casing_burst(
    kind: str,
    label: str,
    depth_md: float,
    tvd_m: float,
    burst_limit_bar: float,
    backup_gradient_bar_per_m: float,
    derating_percent: float = 0.0,
) -> DerivedPoint:
    """Burst of the casing on the outside of the annulus (production casing for A).

    Formula: ``limit = burst × (1 − derating/100) + g_backup × tvd``; MAASP (SF 1) =
    burst − tvd × (g_annulus − g_backup). At the wellhead (tvd 0) the rating alone.
    Source: ISO/TS 16530-2 (production / outer casing burst); API RP 90.
    """
    _check(tvd_m=tvd_m, burst_limit_bar=burst_limit_bar)
    _check(backup_gradient_bar_per_m=backup_gradient_bar_per_m)
    rating = _derated(burst_limit_bar, derating_percent)
    return DerivedPoint(
        kind=kind,
        point_type=CriticalPointType.outer_casing_burst,
        label=label,
        depth_md=depth_md,
        tvd_m=tvd_m,
        pressure_limit_bar=rating + backup_gradient_bar_per_m * tvd_m,
        formula="burst × (1 − derating/100) + g_backup × tvd",
        source=f"{ISO_16530_2}; {API_RP_90}",
        inputs={
            "burst_limit_bar": burst_limit_bar,
            "derating_percent": derating_percent,
            "backup_gradient_bar_per_m": backup_gradient_bar_per_m,
            "tvd_m": tvd_m,
        },
    )


def inner_casing_collapse(
    depth_md: float,
    tvd_m: float,
    collapse_limit_bar: float,
    inner_gradient_bar_per_m: float,
    derating_percent: float = 0.0,
) -> DerivedPoint:
    """Collapse of the inner casing of a B, C... annulus at the top of cement (the deepest
    point its annulus fluid reaches).

    Formula: ``limit = collapse × (1 − derating/100) + g_inner × tvd``, ``g_inner`` the
    fluid inside the inner casing (the next annulus in). Source: ISO/TS 16530-2 (outer
    annuli: inner casing collapse at top of cement); API RP 90.
    """
    _check(tvd_m=tvd_m, collapse_limit_bar=collapse_limit_bar)
    _check(inner_gradient_bar_per_m=inner_gradient_bar_per_m)
    rating = _derated(collapse_limit_bar, derating_percent)
    return DerivedPoint(
        kind="inner_casing_collapse_at_toc",
        point_type=CriticalPointType.inner_string_collapse,
        label="inner casing collapse at top of cement",
        depth_md=depth_md,
        tvd_m=tvd_m,
        pressure_limit_bar=rating + inner_gradient_bar_per_m * tvd_m,
        formula="collapse × (1 − derating/100) + g_inner × tvd",
        source=f"{ISO_16530_2}; {API_RP_90}",
        inputs={
            "collapse_limit_bar": collapse_limit_bar,
            "derating_percent": derating_percent,
            "inner_gradient_bar_per_m": inner_gradient_bar_per_m,
            "tvd_m": tvd_m,
        },
    )


def formation_strength(
    label: str,
    point_type: CriticalPointType,
    depth_md: float,
    tvd_m: float,
    strength_gradient_bar_per_m: float,
) -> DerivedPoint:
    """Formation strength where the annulus meets open formation (casing shoe), or at the
    top of cement when that lies above the shoe (the conservative reading of the point list).

    Formula: ``limit = g_formation × tvd``, ``g_formation`` from a leak-off or formation
    integrity test; MAASP (SF 1) = tvd × (g_formation − g_annulus), the drilling relation
    (leak-off equivalent − mud weight) × 0.052 × TVD in oilfield units.
    Source: ISO/TS 16530-2 (formation at the shoe); leak-off test practice.
    """
    _check(tvd_m=tvd_m, strength_gradient_bar_per_m=strength_gradient_bar_per_m)
    return DerivedPoint(
        kind="formation_strength",
        point_type=point_type,
        label=label,
        depth_md=depth_md,
        tvd_m=tvd_m,
        pressure_limit_bar=strength_gradient_bar_per_m * tvd_m,
        formula="g_formation × tvd",
        source=f"{ISO_16530_2}; {LEAK_OFF}",
        inputs={"strength_gradient_bar_per_m": strength_gradient_bar_per_m, "tvd_m": tvd_m},
    )


def wellhead_rating(rating_bar: float) -> DerivedPoint:
    """The wellhead (casing head / annulus outlet) working pressure, at depth 0.

    Formula: ``limit = rating``. Source: ISO/TS 16530-2 (wellhead rating).
    """
    _check(rating_bar=rating_bar)
    return DerivedPoint(
        kind="wellhead_rating",
        point_type=CriticalPointType.wellhead,
        label="wellhead rating",
        depth_md=0.0,
        tvd_m=0.0,
        pressure_limit_bar=rating_bar,
        formula="rating",
        source=ISO_16530_2,
        inputs={"rating_bar": rating_bar},
    )


def tree_rating(rating_bar: float) -> DerivedPoint:
    """The christmas tree working pressure, at depth 0 (A annulus).

    Formula: ``limit = rating``. Source: ISO/TS 16530-2 (tree rating).
    """
    point = wellhead_rating(rating_bar)
    return DerivedPoint(
        kind="tree_rating",
        point_type=CriticalPointType.tree,
        label="tree rating",
        depth_md=0.0,
        tvd_m=0.0,
        pressure_limit_bar=point.pressure_limit_bar,
        formula=point.formula,
        source=ISO_16530_2,
        inputs=point.inputs,
    )


# --- the architecture, as the derivation needs it -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Accessory:
    """An SSSV or other tubing accessory whose collapse rating is known."""

    name: str
    depth_md: float
    collapse_limit_bar: float


@dataclass(frozen=True, slots=True)
class Tubing:
    packer_depth_md: float | None
    collapse_limit_bar: float | None
    packer_rating_bar: float | None = None
    fluid_gradient_bar_per_m: float = 0.0  # least fluid in the tubing (gas: ~0.01 bar/m)
    min_pressure_bar: float = 0.0  # least tubing head pressure
    derating_percent: float = 0.0
    accessories: tuple[Accessory, ...] = ()


@dataclass(frozen=True, slots=True)
class Casing:
    name: str
    shoe_md: float
    shoe_tvd: float | None = None  # as entered; otherwise from the survey
    burst_limit_bar: float | None = None
    collapse_limit_bar: float | None = None
    derating_percent: float = 0.0
    formation_strength_gradient_bar_per_m: float | None = None  # LOT/FIT at its shoe
    top_of_cement_md: float | None = None  # of the cement behind this casing


@dataclass(frozen=True, slots=True)
class Liner:
    top_md: float
    hanger_rating_bar: float | None


@dataclass(frozen=True, slots=True)
class AnnulusSetting:
    fluid_gradient_bar_per_m: float
    backup_gradient_bar_per_m: float | None  # behind the outer casing
    inner_gradient_bar_per_m: float | None = None  # inside the inner casing (B, C...)
    wellhead_rating_bar: float | None = None
    tree_rating_bar: float | None = None


@dataclass
class Derivation:
    """The proposed points, and the points that could not be derived for want of inputs
    (kind → the fields to fill in)."""

    points: list[DerivedPoint] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)


Tvd = Callable[[float], float]


def _shoe_tvd(casing: Casing, tvd: Tvd) -> float:
    return casing.shoe_tvd if casing.shoe_tvd is not None else tvd(casing.shoe_md)


def _surface_points(out: Derivation, setting: AnnulusSetting, *, tree: bool) -> None:
    if setting.wellhead_rating_bar is None:
        out.missing["wellhead_rating"] = ["well.wellhead_rating_bar"]
    else:
        out.points.append(wellhead_rating(setting.wellhead_rating_bar))
    if tree:
        if setting.tree_rating_bar is None:
            out.missing["tree_rating"] = ["well.tree_rating_bar"]
        else:
            out.points.append(tree_rating(setting.tree_rating_bar))


def _burst_points(
    out: Derivation, outer: Casing, setting: AnnulusSetting, depth_md: float, tvd_m: float, at: str
) -> None:
    if outer.burst_limit_bar is None or setting.backup_gradient_bar_per_m is None:
        out.missing["casing_burst"] = [
            f
            for f, v in (
                ("casing.burst_limit_bar", outer.burst_limit_bar),
                ("annulus.backup_gradient_bar_per_m", setting.backup_gradient_bar_per_m),
            )
            if v is None
        ]
        return
    for kind, label, md, tv in (
        (f"casing_burst_at_{at}", f"{outer.name} burst at {at}", depth_md, tvd_m),
        ("casing_burst_at_wellhead", f"{outer.name} burst at wellhead", 0.0, 0.0),
    ):
        out.points.append(
            casing_burst(
                kind,
                label,
                md,
                tv,
                outer.burst_limit_bar,
                setting.backup_gradient_bar_per_m,
                outer.derating_percent,
            )
        )


def derive_a_annulus(
    setting: AnnulusSetting,
    tubing: Tubing,
    production_casing: Casing,
    tvd: Tvd,
    liner: Liner | None = None,
) -> Derivation:
    """The A annulus point list: tubing collapse at the packer and at each accessory,
    packer rating, liner hanger (when its top lies above the packer), production casing
    burst at the packer and at the wellhead, formation strength at the production casing
    shoe when no packer closes the annulus, wellhead and tree ratings."""
    out = Derivation()
    bottom_md = (
        tubing.packer_depth_md if tubing.packer_depth_md is not None else production_casing.shoe_md
    )
    bottom_tvd = tvd(bottom_md)
    at = "packer" if tubing.packer_depth_md is not None else "shoe"
    tg = tubing.fluid_gradient_bar_per_m
    if tubing.collapse_limit_bar is None:
        out.missing["tubing_collapse"] = ["tubing.collapse_limit_bar"]
    else:
        out.points.append(
            tubing_collapse(
                f"tubing_collapse_at_{at}",
                f"tubing collapse at {at}",
                bottom_md,
                bottom_tvd,
                tubing.collapse_limit_bar,
                tg,
                tubing.min_pressure_bar,
                tubing.derating_percent,
            )
        )
    for acc in tubing.accessories:
        out.points.append(
            tubing_collapse(
                f"accessory_collapse:{acc.name}",
                f"{acc.name} collapse",
                acc.depth_md,
                tvd(acc.depth_md),
                acc.collapse_limit_bar,
                tg,
                tubing.min_pressure_bar,
            )
        )
    if tubing.packer_depth_md is not None:
        if tubing.packer_rating_bar is None:
            out.missing["packer_rating"] = ["tubing.packer_rating_bar"]
        else:
            out.points.append(packer_rating(bottom_md, bottom_tvd, tubing.packer_rating_bar, tg))
    if liner is not None and liner.top_md < bottom_md:
        if liner.hanger_rating_bar is None or setting.backup_gradient_bar_per_m is None:
            out.missing["liner_hanger"] = ["casing.liner_hanger_rating_bar"]
        else:
            out.points.append(
                liner_hanger(
                    liner.top_md,
                    tvd(liner.top_md),
                    liner.hanger_rating_bar,
                    setting.backup_gradient_bar_per_m,
                )
            )
    _burst_points(out, production_casing, setting, bottom_md, bottom_tvd, at)
    if tubing.packer_depth_md is None:
        _formation_point(out, production_casing, production_casing.shoe_md, tvd, "shoe")
    _surface_points(out, setting, tree=True)
    return out


def _formation_point(out: Derivation, casing: Casing, md: float, tvd: Tvd, at: str) -> None:
    if casing.formation_strength_gradient_bar_per_m is None:
        out.missing["formation_strength"] = ["casing.formation_strength_gradient_bar_per_m"]
        return
    shoe = at == "shoe"
    out.points.append(
        formation_strength(
            f"formation strength at {casing.name} {'shoe' if shoe else 'top of cement'}",
            CriticalPointType.shoe if shoe else CriticalPointType.top_of_cement,
            md,
            _shoe_tvd(casing, tvd) if shoe else tvd(md),
            casing.formation_strength_gradient_bar_per_m,
        )
    )


def derive_outer_annulus(
    setting: AnnulusSetting, inner_casing: Casing, outer_casing: Casing, tvd: Tvd
) -> Derivation:
    """The B, C... annulus point list. The annulus fluid reaches down to the top of the
    cement behind the inner casing (or to the outer casing shoe when that is unknown):

    - formation strength at the outer casing shoe, or at the top of cement when it lies
      above that shoe (the formation is then behind cement and casing);
    - inner casing collapse at the top of cement (or the outer shoe when it is unknown);
    - outer casing burst at the bottom of the fluid column inside it (the shoe or the top
      of cement, whichever is shallower) and at the wellhead;
    - the wellhead rating.
    """
    out = Derivation()
    toc = inner_casing.top_of_cement_md
    if toc is not None and toc < outer_casing.shoe_md:
        burst_md, burst_tvd, at = toc, tvd(toc), "top_of_cement"
    else:
        burst_md, burst_tvd, at = outer_casing.shoe_md, _shoe_tvd(outer_casing, tvd), "shoe"
    _formation_point(out, outer_casing, burst_md, tvd, at)
    collapse_md = toc if toc is not None else outer_casing.shoe_md
    collapse_tvd = tvd(collapse_md) if toc is not None else _shoe_tvd(outer_casing, tvd)
    if inner_casing.collapse_limit_bar is None or setting.inner_gradient_bar_per_m is None:
        out.missing["inner_casing_collapse"] = [
            f
            for f, v in (
                ("casing.collapse_limit_bar", inner_casing.collapse_limit_bar),
                ("annulus.inner_gradient_bar_per_m", setting.inner_gradient_bar_per_m),
            )
            if v is None
        ]
    else:
        out.points.append(
            inner_casing_collapse(
                collapse_md,
                collapse_tvd,
                inner_casing.collapse_limit_bar,
                setting.inner_gradient_bar_per_m,
                inner_casing.derating_percent,
            )
        )
    _burst_points(out, outer_casing, setting, burst_md, burst_tvd, at)
    _surface_points(out, setting, tree=False)
    return out
