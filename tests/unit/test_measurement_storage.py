"""The pure parts of measurement storage: weeks, the maintenance plan, which roll-up answers
a downsampling query, and the retention settings."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api.store import buckets_query, rollup_for
from shared.infrastructure.settings import Settings
from shared.persistence.measurement_storage import (
    WEEK,
    covered_until,
    partition_name,
    plan,
    week_start,
)

times = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@given(times)
def test_a_week_starts_on_monday_midnight_utc_and_holds_the_time(t: datetime) -> None:
    start = week_start(t)
    assert start.weekday() == 0 and (start.hour, start.minute, start.second) == (0, 0, 0)
    assert start <= t < start + WEEK


def test_partition_names_sort_by_week() -> None:
    assert partition_name(datetime(2026, 11, 30, tzinfo=UTC)) == "annulus_measurement_p20261130"


@given(
    now=times,
    have=st.sets(st.integers(-30, 30), max_size=40),
    ahead=st.integers(1, 8),
    retention=st.integers(0, 200),
)
def test_the_plan_prepares_ahead_and_never_drops_a_week_with_young_readings(
    now: datetime, have: set[int], ahead: int, retention: int
) -> None:
    existing = {
        partition_name(week_start(now) + WEEK * i): week_start(now) + WEEK * i for i in have
    }
    p = plan(existing, now, ahead, retention)
    after = set(existing.values()) | set(p.create)
    assert {week_start(now) + WEEK * i for i in range(ahead + 1)} <= after
    assert not set(p.create) & set(existing.values())
    for name in p.drop:
        assert existing[name] + WEEK <= now - timedelta(days=retention), "a young week dropped"
    if retention == 0:
        assert p.drop == () and p.cutoff is None
    else:
        expired = {n for n, s in existing.items() if s + WEEK <= now - timedelta(days=retention)}
        assert set(p.drop) == expired


def test_coverage_ends_at_the_first_missing_week() -> None:
    now = datetime(2026, 12, 2, 6, tzinfo=UTC)
    w = week_start(now)
    weeks = {partition_name(w + WEEK * i): w + WEEK * i for i in (-1, 0, 1, 3)}
    assert covered_until(weeks, now) == w + 2 * WEEK
    assert covered_until({}, now) == w


@pytest.mark.parametrize(
    ("width", "start", "table"),
    [
        (timedelta(days=1), datetime(2026, 1, 5, tzinfo=UTC), "annulus_measurement_daily"),
        (timedelta(days=7), datetime(2026, 1, 5, tzinfo=UTC), "annulus_measurement_daily"),
        (timedelta(hours=2), datetime(2026, 1, 5, 3, tzinfo=UTC), "annulus_measurement_hourly"),
        # a day from 03:00 UTC: whole hours fit, whole days do not
        (timedelta(days=1), datetime(2026, 1, 5, 3, tzinfo=UTC), "annulus_measurement_hourly"),
        (timedelta(minutes=30), datetime(2026, 1, 5, tzinfo=UTC), None),
        (timedelta(hours=1), datetime(2026, 1, 5, 3, 30, tzinfo=UTC), None),
        (timedelta(minutes=90), datetime(2026, 1, 5, tzinfo=UTC), None),
    ],
)
def test_a_rollup_answers_only_buckets_it_fits_exactly(
    width: timedelta, start: datetime, table: str | None
) -> None:
    fit = rollup_for(width, start)
    assert (fit and fit[0]) == table


def test_midnight_in_another_zone_is_not_a_utc_day() -> None:
    from zoneinfo import ZoneInfo

    oslo_midnight = datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/Oslo"))
    fit = rollup_for(timedelta(days=1), oslo_midnight)
    assert fit is not None and fit[0] == "annulus_measurement_hourly"


def test_the_raw_tail_starts_after_the_last_whole_rollup_bucket() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    sql, params = buckets_query(timedelta(days=1), start, start + timedelta(days=3, hours=5))
    assert "annulus_measurement_daily" in sql
    assert params["edge"] == start + timedelta(days=3)
    sql, params = buckets_query(timedelta(minutes=5), start, start + timedelta(days=1))
    assert "_daily" not in sql and "_hourly" not in sql and "edge" not in params


def test_hourly_rollups_must_outlive_raw_readings() -> None:
    Settings(measurement_retention_days=90, measurement_hourly_retention_days=365)
    Settings(measurement_retention_days=0, measurement_hourly_retention_days=0)
    for raw, hourly in ((90, 30), (0, 365)):
        with pytest.raises(ValueError, match="HOURLY_RETENTION"):
            Settings(measurement_retention_days=raw, measurement_hourly_retention_days=hourly)


def test_the_drift_check_skips_partitions_only() -> None:
    from shared.persistence.measurement_storage import include_name

    for name in (
        "annulus_measurement_p20261130",
        "annulus_measurement_default",
        "annulus_measurement_p20261130_pkey",
    ):
        assert not include_name(name, "table", {})
    for name in ("annulus_measurement", "annulus_measurement_hourly", "pk_annulus_measurement"):
        assert include_name(name, "table", {})
