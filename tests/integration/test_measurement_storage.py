"""annulus_measurement's weekly partitions, retention and roll-ups, on a real PostgreSQL.

Maintenance is run with a chosen ``now``, so the weeks it makes and drops are this test's
own; readings are written the ways the sink writes them (COPY, and INSERT ... ON CONFLICT
DO NOTHING for a replay)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from shared.infrastructure.settings import Settings
from shared.persistence.measurement_storage import (
    DEFAULT_PARTITION,
    WEEK,
    maintain,
    partition_name,
    week_start,
    weekly_partitions,
)

# A Wednesday in a year no other test writes readings in.
NOW = datetime(2031, 3, 12, 15, 30, tzinfo=UTC)
COLUMNS = "id, annulus_id, timestamp, source, pressure_bar, temperature_c, quality"


@pytest.fixture
def conn(settings: Settings, clean_db: None):
    with psycopg.connect(settings.libpq_url) as c:
        yield c
        # The weeks these tests made (far from now and from the other tests' readings) go,
        # so each test starts from the partitions the migration made.
        c.rollback()
        for name, start in weekly_partitions(c).items():
            if start.year >= 2029 or start.year < 2000:
                c.execute(f"DROP TABLE {name}")
        c.commit()
        # Retention with a ``now`` in 2031 dropped today's weeks: make them again.
        maintain(c, datetime.now(UTC), 4, 0, 0)


@pytest.fixture
def annulus(conn: psycopg.Connection) -> int:
    well = conn.execute(
        "INSERT INTO well (name, field, type, status, location, measured_depth,"
        " consequence_level) VALUES ('STORE-1', 'F', 'oil_producer', 'active', 'platform',"
        " 3000, 3) RETURNING id"
    ).fetchone()[0]
    a = conn.execute(
        "INSERT INTO annulus (well_id, name, fluid_gradient_bar_per_m) VALUES (%s, 'A', 0.1)"
        " RETURNING id",
        (well,),
    ).fetchone()[0]
    conn.commit()
    return a


def _copy(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """COPY, as the sink's fast path does: one statement, all or nothing."""
    with conn.cursor().copy(f"COPY annulus_measurement ({COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((uuid4(), *row))
    conn.commit()


def _where(conn: psycopg.Connection, annulus: int) -> dict[datetime, str]:
    """Each stored reading's time -> the partition holding it."""
    rows = conn.execute(
        "SELECT timestamp, tableoid::regclass::text FROM annulus_measurement WHERE annulus_id = %s",
        (annulus,),
    ).fetchall()
    return {ts: part for ts, part in rows}


def _run(conn: psycopg.Connection, now: datetime, retention_days: int = 0, hourly: int = 0):
    return maintain(
        conn, now, ahead_weeks=4, retention_days=retention_days, hourly_retention_days=hourly
    )


def test_partitions_are_made_ahead_and_readings_land_in_their_week(
    conn: psycopg.Connection, annulus: int
) -> None:
    report = _run(conn, NOW)
    this_week = week_start(NOW)
    assert this_week == datetime(2031, 3, 10, tzinfo=UTC)  # a Monday, 00:00 UTC
    weeks = set(weekly_partitions(conn).values())
    assert {this_week + WEEK * i for i in range(5)} <= weeks
    assert report.covered_until is not None and report.covered_until >= this_week + 5 * WEEK
    assert _run(conn, NOW).created == []  # a second run has nothing to do

    times = [this_week, NOW, this_week + WEEK - timedelta(microseconds=1), NOW + 3 * WEEK]
    _copy(conn, [(annulus, t, "pi", 10.0, None, "good") for t in times])
    where = _where(conn, annulus)
    for t in times:
        assert where[t] == partition_name(week_start(t)), t
    assert where[times[2]] == partition_name(this_week)  # the week's last microsecond


def test_a_reading_no_partition_covers_is_stored_and_moves_into_its_week_later(
    conn: psycopg.Connection, annulus: int
) -> None:
    _run(conn, NOW)
    past, future = datetime(1990, 6, 1, tzinfo=UTC), NOW + timedelta(days=400)
    _copy(conn, [(annulus, t, "pi", 7.0, None, "good") for t in (past, future)])
    where = _where(conn, annulus)
    assert where == {past: DEFAULT_PARTITION, future: DEFAULT_PARTITION}

    # A year on, maintenance makes that week: the stray moves into it, still stored once,
    # and the roll-up counts it once.
    later = _run(conn, future)
    assert later.moved_from_default == 1
    assert _where(conn, annulus)[future] == partition_name(week_start(future))
    assert (
        conn.execute(
            "SELECT count(*) FROM annulus_measurement WHERE annulus_id = %s AND timestamp = %s",
            (annulus, future),
        ).fetchone()[0]
        == 1
    )
    assert (
        conn.execute(
            "SELECT sum(reading_count) FROM annulus_measurement_daily WHERE annulus_id = %s",
            (annulus,),
        ).fetchone()[0]
        == 2
    )


def test_retention_drops_only_whole_old_weeks_and_keeps_the_rollups(
    conn: psycopg.Connection, annulus: int
) -> None:
    old_now, cutoff = NOW - timedelta(days=60), NOW - timedelta(days=30)
    for now in (old_now, cutoff, NOW):  # every week from old_now's to NOW's + 4
        _run(conn, now)
    old = [old_now, cutoff - WEEK - timedelta(days=1)]  # in weeks that end before the cut-off
    straddling = week_start(cutoff) + timedelta(hours=1)  # older than the cut-off, same week
    young = [cutoff + timedelta(hours=1), NOW - timedelta(minutes=1), NOW]
    ancient = datetime(1990, 1, 1, tzinfo=UTC)  # in the default partition
    _copy(
        conn,
        [(annulus, t, "pi", 5.0, None, "good") for t in [*old, straddling, *young, ancient]],
    )
    before = conn.execute(
        "SELECT sum(reading_count) FROM annulus_measurement_daily WHERE annulus_id = %s",
        (annulus,),
    ).fetchone()[0]

    weeks = weekly_partitions(conn)
    report = _run(conn, NOW, retention_days=30)

    assert {partition_name(week_start(t)) for t in old} <= set(report.dropped)
    assert all(weeks[name] + WEEK <= cutoff for name in report.dropped)
    assert partition_name(week_start(cutoff)) not in report.dropped
    assert report.deleted_from_default == 1
    kept = set(_where(conn, annulus))
    assert kept == {straddling, *young}, "only readings of wholly expired weeks go"
    assert week_start(NOW) in weekly_partitions(conn).values()
    after = conn.execute(
        "SELECT sum(reading_count) FROM annulus_measurement_daily WHERE annulus_id = %s",
        (annulus,),
    ).fetchone()[0]
    assert after == before == 7, "the roll-ups outlive the raw readings"
    assert _run(conn, NOW, retention_days=30).dropped == []


def test_hourly_retention_deletes_old_hourly_rollups_only(
    conn: psycopg.Connection, annulus: int
) -> None:
    _copy(conn, [(annulus, NOW - timedelta(days=d), "pi", 5.0, None, "good") for d in (1, 50)])
    report = _run(conn, NOW, retention_days=10, hourly=40)
    assert report.deleted_hourly == 1
    hours = conn.execute(
        "SELECT bucket_start FROM annulus_measurement_hourly WHERE annulus_id = %s", (annulus,)
    ).fetchall()
    assert [h for (h,) in hours] == [(NOW - timedelta(days=1)).replace(minute=0)]
    days = conn.execute(
        "SELECT count(*) FROM annulus_measurement_daily WHERE annulus_id = %s", (annulus,)
    ).fetchone()[0]
    assert days == 2


def test_rollups_equal_an_aggregation_of_the_stored_readings(
    conn: psycopg.Connection, annulus: int
) -> None:
    _run(conn, NOW)
    base = week_start(NOW) - timedelta(days=2)  # crosses from the default into a week
    rows = [
        (
            annulus,
            base + timedelta(minutes=7 * i),
            "pi",
            100 + (i * 37 % 23) * 0.5,
            20.0,
            "bad" if i % 11 == 0 else ("uncertain" if i % 5 == 0 else "good"),
        )
        for i in range(1500)
    ]
    rows.append((annulus, base + timedelta(minutes=3), "pi", None, None, "bad"))
    _copy(conn, rows[:900])
    _copy(conn, rows[900:])
    # A replay of an overlapping window, as the sink's slow path writes it: the already
    # stored readings must not be counted again, the new ones must.
    extra = [
        (annulus, base + timedelta(minutes=7 * i + 1), "pi", 250.0, None, "good") for i in range(3)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO annulus_measurement ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(uuid4(), *r) for r in rows[800:1000] + extra],
        )
    conn.commit()

    for table, width in (
        ("annulus_measurement_hourly", "1 hour"),
        ("annulus_measurement_daily", "1 day"),
    ):
        expected = conn.execute(
            f"""
            SELECT date_bin('{width}', timestamp, TIMESTAMPTZ '2000-01-03 00:00:00+00') b, min(pressure_bar),
                   max(pressure_bar), sum(pressure_bar), count(*), max(timestamp),
                   (array_agg(pressure_bar ORDER BY timestamp DESC))[1]
              FROM annulus_measurement
             WHERE annulus_id = %s AND quality <> 'bad' AND pressure_bar IS NOT NULL
             GROUP BY b ORDER BY b
            """,
            (annulus,),
        ).fetchall()
        got = conn.execute(
            f"SELECT bucket_start, min_bar, max_bar, sum_bar, reading_count, last_ts, last_bar "
            f"FROM {table} WHERE annulus_id = %s ORDER BY bucket_start",
            (annulus,),
        ).fetchall()
        assert len(got) == len(expected) > 1, table
        for g, e in zip(got, expected, strict=True):
            assert (g[0], g[1], g[2], g[4], g[5], g[6]) == (e[0], e[1], e[2], e[4], e[5], e[6])
            assert g[3] == pytest.approx(e[3], rel=1e-12)
    total = conn.execute(
        "SELECT sum(reading_count) FROM annulus_measurement_daily WHERE annulus_id = %s",
        (annulus,),
    ).fetchone()[0]
    assert total == sum(1 for r in rows if r[5] != "bad") + len(extra)


def test_a_reading_is_stored_once_across_partitions(conn: psycopg.Connection, annulus: int) -> None:
    """The key (annulus, ts, source) holds on the partitioned table: a second copy of a
    stored reading is refused, whether its week has a partition or not."""
    _run(conn, NOW)
    for t in (NOW, datetime(1990, 1, 1, tzinfo=UTC)):
        _copy(conn, [(annulus, t, "pi", 1.0, None, "good")])
        with pytest.raises(psycopg.errors.UniqueViolation):
            _copy(conn, [(annulus, t, "pi", 2.0, None, "good")])
        conn.rollback()
