"""The demo's sample field is a realistic one: valid geometry, sensible MAASPs, incidents."""

from datetime import UTC, datetime

import pytest

from services.demo import sample_field
from shared.domain.maasp import CriticalPoint, maasp

NOW = datetime(2026, 11, 25, tzinfo=UTC)
FIELD = sample_field(20, seed=7, now=NOW)


def test_twenty_wells_of_several_types_with_every_scripted_incident() -> None:
    assert len(FIELD) == 20
    assert len({p.well["name"] for p in FIELD}) == 20
    assert len({p.well["type"] for p in FIELD}) >= 4
    assert sorted(i for p in FIELD for i in p.incidents) == ["buildup", "sap", "sssv_fail"]


@pytest.mark.parametrize("plan", FIELD, ids=lambda p: p.well["name"])
def test_geometry_is_what_the_api_accepts(plan) -> None:
    md = plan.well["measured_depth"]
    for string in [*plan.casing_strings, plan.tubing]:
        assert string["top_md"] < string["bottom_md"] <= md
        assert string["inner_diameter_in"] < string["outer_diameter_in"]
    casings = {c["name"]: c for c in plan.casing_strings}
    for a in plan.annuli:
        inner = plan.tubing if a.inner == "tubing" else casings[a.inner]
        assert inner["outer_diameter_in"] < casings[a.outer]["inner_diameter_in"], a.name
        for point in a.critical_points:
            assert 0 <= point["tvd_m"] <= point["depth_md"] <= md


@pytest.mark.parametrize("plan", FIELD, ids=lambda p: p.well["name"])
def test_maasp_of_each_annulus_is_typical_and_limited_below_the_wellhead(plan) -> None:
    expected = {"A": (50, 250), "B": (20, 120), "C": (5, 60)}
    for a in plan.annuli:
        points = [
            CriticalPoint(None, p["label"], p["tvd_m"], p["pressure_limit_bar"])
            for p in a.critical_points
        ]
        outcome = maasp(points, a.fluid_gradient_bar_per_m, 0.9)
        low, high = expected[a.name]
        assert low <= outcome.maasp_bar <= high, (a.name, outcome.maasp_bar)
        assert outcome.limiting_point.tvd_m > 0, "a deep point, not the wellhead, governs"


def test_test_history_places_some_elements_due_soon_and_some_overdue() -> None:
    from datetime import timedelta

    last_sssv = [
        max(datetime.fromisoformat(t["test_date"]) for t in e["tests"])
        for p in FIELD
        for e in p.envelopes["primary"]
        if e["element_type"] == "sssv"
    ]
    due = [last + timedelta(days=182) for last in last_sssv]
    assert any(d < NOW for d in due), "an overdue SSSV test for the escalation sweep"
    assert any(NOW <= d <= NOW + timedelta(days=14) for d in due), "one coming due for a reminder"
