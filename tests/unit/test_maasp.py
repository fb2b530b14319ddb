"""MAASP from critical points: hand-checked cases, published examples and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.maasp import (
    BAR_PER_PSI,
    PSI_PER_BAR,
    CriticalPoint,
    bar_to_psi,
    maasp,
    psi_to_bar,
)

M_PER_FT = 0.3048
PSI_PER_FT_PER_PPG = 0.052  # oilfield hydrostatic constant


def cp(name: str, tvd_m: float, limit_bar: float, id_: int | None = None) -> CriticalPoint:
    return CriticalPoint(id=id_, name=name, tvd_m=tvd_m, pressure_limit_bar=limit_bar)


# --------------------------------------------------------------------------- units


def test_psi_bar_constants_agree() -> None:
    # both published constants are rounded (to 9 and 10 significant figures)
    assert BAR_PER_PSI == pytest.approx(0.0689475729, rel=1e-8)
    assert psi_to_bar(PSI_PER_BAR) == pytest.approx(1.0)
    assert bar_to_psi(psi_to_bar(1918.0)) == pytest.approx(1918.0)


# --------------------------------------------------------------------------- hand-checked


WELLHEAD = cp("wellhead", 0.0, 345.0, 1)
SHOE = cp("shoe", 1000.0, 300.0, 2)
PACKER = cp("packer", 3000.0, 500.0, 3)


@pytest.mark.parametrize(
    ("gradient", "expected_maasp", "expected_point", "expected_allowable"),
    [
        # 0.9*345 = 310.5; 0.9*300 - g*1000; 0.9*500 - g*3000
        (0.0, 270.0, SHOE, (310.5, 270.0, 450.0)),
        (0.05, 220.0, SHOE, (310.5, 220.0, 300.0)),
        # the deep point's larger column overtakes the shoe above g = 0.09 bar/m
        (0.1, 150.0, PACKER, (310.5, 170.0, 150.0)),
        (0.12, 90.0, PACKER, (310.5, 150.0, 90.0)),
        # the packer is already past its limit with the annulus open: MAASP clamps to 0
        (0.2, 0.0, PACKER, (310.5, 70.0, -150.0)),
    ],
)
def test_limiting_point_changes_with_gradient(
    gradient: float,
    expected_maasp: float,
    expected_point: CriticalPoint,
    expected_allowable: tuple[float, ...],
) -> None:
    out = maasp([WELLHEAD, SHOE, PACKER], gradient, 0.9)
    assert out.maasp_bar == pytest.approx(expected_maasp)
    assert out.limiting_point == expected_point
    assert out.allowable_surface_bar == pytest.approx(expected_allowable)


def test_allowable_is_in_input_order() -> None:
    out = maasp([PACKER, WELLHEAD, SHOE], 0.1, 0.9)
    assert out.allowable_surface_bar == pytest.approx((150.0, 310.5, 170.0))
    assert out.limiting_point == PACKER


def test_wellhead_at_depth_zero_is_limited_by_its_rating_alone() -> None:
    wellhead = cp("wellhead", 0.0, 200.0)
    for gradient in (0.0, 0.1, 0.25):
        out = maasp([wellhead, SHOE], gradient, 0.9)
        assert out.allowable_surface_bar[0] == pytest.approx(180.0)
    # with a light fluid the shoe (270 - 50 = 220) is above the wellhead (180): wellhead governs
    out = maasp([wellhead, SHOE], 0.05, 0.9)
    assert out.limiting_point == wellhead
    assert out.maasp_bar == pytest.approx(180.0)


def test_only_a_wellhead_point() -> None:
    out = maasp([cp("tree", 0.0, 690.0)], 0.12, 1.0)
    assert out.maasp_bar == pytest.approx(690.0)


def test_no_points_has_no_maasp() -> None:
    out = maasp([], 0.1)
    assert out.maasp_bar is None
    assert out.limiting_point is None
    assert out.allowable_surface_bar == ()


def test_tie_keeps_first_point() -> None:
    a, b = cp("a", 0.0, 100.0), cp("b", 0.0, 100.0)
    assert maasp([a, b], 0.1).limiting_point is a


# --------------------------------------------------------------------------- published


def _point_with_hydrostatic_difference(
    name: str, limit_psi: float, difference_psi: float, gradient_bar_per_m: float
) -> CriticalPoint:
    """A point whose fluid column at ``gradient_bar_per_m`` weighs ``difference_psi``."""
    tvd_m = psi_to_bar(difference_psi) / gradient_bar_per_m
    return cp(name, tvd_m, psi_to_bar(limit_psi))


def test_2_8_a_2a_c_annulus_burst_at_shoe() -> None:
    gradient = 0.1  # bar/m; the depth is chosen so the column weighs 136 psi
    shoe = _point_with_hydrostatic_difference("C shoe burst", 1918.0, 136.0, gradient)
    wellhead = cp("wellhead", 0.0, psi_to_bar(5000.0))
    out = maasp([wellhead, shoe], gradient, safety_factor=1.0)
    assert out.maasp_bar is not None
    assert bar_to_psi(out.maasp_bar) == pytest.approx(1782.0, abs=1e-6)
    assert out.limiting_point == shoe


def test_2_8_a_2a_a_annulus_collapse_governs_over_burst() -> None:
    gradient = 0.118  # bar/m; the packer depth makes the column weigh 3108 psi
    collapse = _point_with_hydrostatic_difference("tubing collapse", 6818.0, 3108.0, gradient)
    burst = cp("production casing burst", 0.0, psi_to_bar(6975.0))
    out = maasp([burst, collapse], gradient, safety_factor=1.0)
    assert out.maasp_bar is not None
    assert bar_to_psi(out.maasp_bar) == pytest.approx(3710.0, abs=1e-6)
    assert out.limiting_point == collapse
    assert bar_to_psi(out.allowable_surface_bar[0]) == pytest.approx(6975.0)


def test_drilling_example_leak_off_at_shoe() -> None:
    shoe_ft = 7000.0
    leak_off_psi = 13.95 * PSI_PER_FT_PER_PPG * shoe_ft
    mud_bar_per_m = psi_to_bar(9.5 * PSI_PER_FT_PER_PPG) / M_PER_FT
    shoe = cp("shoe", shoe_ft * M_PER_FT, psi_to_bar(leak_off_psi))
    out = maasp([shoe], mud_bar_per_m, safety_factor=1.0)
    assert out.maasp_bar is not None
    expected = (13.95 - 9.5) * 0.052 * 7000  # 1619.8 psi, "1620 psi"
    assert bar_to_psi(out.maasp_bar) == pytest.approx(expected, abs=1e-6)
    assert round(bar_to_psi(out.maasp_bar)) == 1620


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("points", "gradient", "safety_factor", "message"),
    [
        ([cp("x", -1.0, 100.0)], 0.1, 0.9, "tvd_m must be >= 0"),
        ([cp("x", math.nan, 100.0)], 0.1, 0.9, "tvd_m must be finite"),
        ([cp("x", math.inf, 100.0)], 0.1, 0.9, "tvd_m must be finite"),
        ([cp("x", 10.0, math.nan)], 0.1, 0.9, "pressure_limit_bar must be finite"),
        ([cp("x", 10.0, -5.0)], 0.1, 0.9, "pressure_limit_bar must be >= 0"),
        ([cp("x", 10.0, 100.0)], -0.01, 0.9, "fluid_gradient_bar_per_m must be >= 0"),
        ([cp("x", 10.0, 100.0)], math.nan, 0.9, "fluid_gradient_bar_per_m must be finite"),
        ([cp("x", 10.0, 100.0)], 0.1, 0.0, "safety_factor must be in"),
        ([cp("x", 10.0, 100.0)], 0.1, 1.01, "safety_factor must be in"),
        ([cp("x", 10.0, 100.0)], 0.1, math.nan, "safety_factor must be in"),
        ([], 0.1, -1.0, "safety_factor must be in"),
    ],
)
def test_bad_inputs_raise(
    points: list[CriticalPoint], gradient: float, safety_factor: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        maasp(points, gradient, safety_factor)


def test_safety_factor_one_is_allowed_and_default_is_0_9() -> None:
    assert maasp([cp("w", 0.0, 100.0)], 0.1, 1.0).maasp_bar == pytest.approx(100.0)
    assert maasp([cp("w", 0.0, 100.0)], 0.1).maasp_bar == pytest.approx(90.0)


# --------------------------------------------------------------------------- properties

point_st = st.builds(
    cp,
    st.text(max_size=5),
    st.floats(0.0, 6000.0),
    st.floats(0.0, 2000.0),
)
points_st = st.lists(point_st, min_size=1, max_size=8)
gradient_st = st.floats(0.0, 0.3)
safety_st = st.floats(0.01, 1.0)


@given(points_st, gradient_st, safety_st)
def test_maasp_is_between_zero_and_factored_smallest_limit(
    points: list[CriticalPoint], gradient: float, safety_factor: float
) -> None:
    out = maasp(points, gradient, safety_factor)
    assert out.maasp_bar is not None
    assert out.maasp_bar >= 0.0
    assert out.maasp_bar <= safety_factor * min(p.pressure_limit_bar for p in points)
    assert out.limiting_point in points
    assert len(out.allowable_surface_bar) == len(points)
    assert out.maasp_bar == max(0.0, min(out.allowable_surface_bar))


@given(points_st, gradient_st, gradient_st, safety_st)
def test_maasp_does_not_fall_when_gradient_falls(
    points: list[CriticalPoint], g1: float, g2: float, safety_factor: float
) -> None:
    lighter, heavier = sorted((g1, g2))
    light = maasp(points, lighter, safety_factor).maasp_bar
    heavy = maasp(points, heavier, safety_factor).maasp_bar
    assert light is not None and heavy is not None
    assert light >= heavy


@given(gradient_st, safety_st)
def test_no_points_is_always_none(gradient: float, safety_factor: float) -> None:
    out = maasp((), gradient, safety_factor)
    assert out.maasp_bar is None and out.limiting_point is None
