"""Deviation survey: minimum curvature against a published example and exact geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.survey import Station, SurveyError, minimum_curvature, tvd_at, validate_stations


def test_published_minimum_curvature_course() -> None:
    """Worked example of the minimum-curvature method (Lyons & Carter, "Formulas and
    Calculations for Drilling, Production and Workover", 2nd ed.; reproduced by
    drillingformulas.com "Minimum Curvature Method"): stations at 3500 ft (I 15°, A 20°) and
    3600 ft (I 25°, A 45°) give a dogleg of 12.95°, RF 1.00408, and over the 100 ft course
    North 27.22 ft, East 19.45 ft, TVD 94.01 ft. Units cancel: feet in, feet out."""
    t = minimum_curvature([Station(3500, 15, 20), Station(3600, 25, 45)])
    # index 0 is the vertical tie-in at MD 0 added by the survey; the course is 1 -> 2
    assert t.tvd_m[2] - t.tvd_m[1] == pytest.approx(94.01, abs=0.005)
    assert t.north_m[2] - t.north_m[1] == pytest.approx(27.22, abs=0.005)
    assert t.east_m[2] - t.east_m[1] == pytest.approx(19.45, abs=0.005)


def test_quarter_circle_build_is_exact() -> None:
    """A constant build from vertical to horizontal over R·π/2 of hole is a quarter circle
    of radius R: it lands R deeper and R away, whatever the number of stations between."""
    r = 1000.0
    arc = r * math.pi / 2
    for n in (1, 3, 9):
        stations = [Station(arc * k / n, 90.0 * k / n, 135.0) for k in range(n + 1)]
        t = minimum_curvature(stations)
        assert t.tvd_m[-1] == pytest.approx(r, rel=1e-12)
        horizontal = math.hypot(t.north_m[-1], t.east_m[-1])
        assert horizontal == pytest.approx(r, rel=1e-12)
    # between stations TVD follows the same arc: at half the hole, R·sin(45°)
    t = minimum_curvature([Station(0, 0, 0), Station(arc, 90, 0)])
    assert t.tvd_at(arc / 2)[0] == pytest.approx(r * math.sin(math.pi / 4), rel=1e-12)


def test_vertical_well_without_survey_and_straight_slant() -> None:
    assert tvd_at([], 1234.5) == 1234.5
    stations = [Station(0, 30, 10), Station(1000, 30, 10)]
    assert tvd_at(stations, 400.0) == pytest.approx(400 * math.cos(math.radians(30)))
    # below the last station the path goes on straight
    assert tvd_at(stations, 1500.0) == pytest.approx(1500 * math.cos(math.radians(30)))


def test_first_station_deeper_than_zero_gets_a_vertical_tie_in() -> None:
    ordered = validate_stations([Station(100, 0, 0), Station(200, 10, 0)])
    assert ordered[0] == Station(0.0, 0.0, 0.0)
    assert tvd_at([Station(100, 0, 0)], 50.0) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("stations", "index", "field"),
    [
        ([Station(0, 0, 0), Station(100, 5, 0), Station(100, 6, 0)], 2, "md_m"),
        ([Station(0, 0, 0), Station(90, 0, 0), Station(80, 0, 0)], 2, "md_m"),
        ([Station(0, 0, 0), Station(100, 181, 0)], 1, "inclination_deg"),
        ([Station(0, -1, 0)], 0, "inclination_deg"),
        ([Station(0, 0, 0), Station(100, 5, 360.5)], 1, "azimuth_deg"),
        ([Station(-5, 0, 0)], 0, "md_m"),
        ([Station(0, 0, 0), Station(math.nan, 0, 0)], 1, "md_m"),
    ],
)
def test_bad_stations_name_index_and_field(stations: list[Station], index: int, field: str) -> None:
    with pytest.raises(SurveyError) as info:
        validate_stations(stations)
    assert (info.value.index, info.value.field) == (index, field)
    assert f"station {index}: {field}" in str(info.value)


survey = st.lists(
    st.tuples(st.floats(1.0, 500.0), st.floats(0.0, 90.0), st.floats(0.0, 360.0)),
    min_size=1,
    max_size=12,
).map(
    lambda rows: [
        Station(float(md), inc, azi)
        for md, (_, inc, azi) in zip(np.cumsum([r[0] for r in rows]), rows, strict=True)
    ]
)


@given(survey, st.floats(0.0, 6000.0))
def test_tvd_never_exceeds_md_and_grows_with_md(stations: list[Station], md: float) -> None:
    t = minimum_curvature(stations)
    here, deeper = t.tvd_at([md, md + 10.0])
    assert here <= md + 1e-6
    assert deeper >= here - 1e-9  # inclination <= 90°: the well never climbs
    # interpolation meets every station exactly
    assert np.allclose(t.tvd_at(t.md_m), t.tvd_m, atol=1e-6)
