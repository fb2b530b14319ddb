"""Alembic migrations on a real PostgreSQL: up, down, up again, and no drift from the models."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg.rows import dict_row
from sqlalchemy import create_engine, inspect

from shared.infrastructure.settings import Settings
from shared.persistence.measurement_storage import include_name
from shared.persistence.migrate import downgrade, upgrade
from shared.persistence.models import Base


@pytest.fixture
def empty_database(settings: Settings):
    """A database of its own, so this test can drop everything without touching others."""
    admin_url = settings.libpq_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS wims_migrations")
        conn.execute("CREATE DATABASE wims_migrations")
    url = settings.sqlalchemy_url.rsplit("/", 1)[0] + "/wims_migrations"
    yield Settings(database_url=url, environment="test")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS wims_migrations WITH (FORCE)")


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_leaves_no_drift(empty_database: Settings) -> None:
    url = empty_database.sqlalchemy_url
    upgrade(empty_database)
    assert set(Base.metadata.tables) <= _tables(url)

    downgrade(empty_database)
    assert _tables(url) <= {"alembic_version"}

    upgrade(empty_database)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(
                    conn, opts={"compare_type": True, "include_name": include_name}
                ),
                Base.metadata,
            )
            seeded = conn.exec_driver_sql("SELECT count(*) FROM risk_matrix_cell").scalar()
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert seeded == 25, "the default 5 x 5 risk matrix is seeded"


def test_one_measurement_per_annulus_timestamp_and_source(settings: Settings) -> None:
    """The uniqueness that makes a replayed reading store one row is in the schema itself."""
    with psycopg.connect(settings.libpq_url) as conn:
        well_id = conn.execute(
            "INSERT INTO well (name, field, type, status, location, measured_depth,"
            " consequence_level) VALUES ('MIG-1', 'F', 'oil_producer', 'active', 'platform',"
            " 3000, 3) RETURNING id"
        ).fetchone()[0]
        annulus_id = conn.execute(
            "INSERT INTO annulus (well_id, name, fluid_gradient_bar_per_m) VALUES (%s, 'A', 0.1)"
            " RETURNING id",
            (well_id,),
        ).fetchone()[0]
        insert = (
            "INSERT INTO annulus_measurement (id, annulus_id, timestamp, source, pressure_bar, quality)"
            " VALUES (gen_random_uuid(), %s, '2026-11-25T10:00:00Z', 'pi', 10, 'good')"
        )
        conn.execute(insert, (annulus_id,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, (annulus_id,))
        conn.rollback()


# --- 0003: the specification's names, on a database that holds data ----------------------------

# One row in every table at revision 0001, written with 0001's names and values. The
# (casing, cement, risk) values are the ones 0003 renames or maps.
FILL_0001 = """
INSERT INTO app_user (id, email, full_name, hashed_password, role)
  VALUES (1, 'eng@wims.test', 'Eng', 'hash-1', 'engineer');
INSERT INTO api_key (id, name, source, key_prefix, key_hash, created_by_id)
  VALUES (1, 'pi', 'pi', 'wims_abc', 'digest-1', 1);
INSERT INTO well (id, name, field, well_type, status, location, measured_depth,
                  true_vertical_depth, consequence_level, spud_date)
  VALUES (1, 'MIG-1', 'North', 'gas_producer', 'active', 'subsea', 3500, 3200, 4,
          '2020-01-02T00:00:00Z');
INSERT INTO casing_string (id, well_id, name, casing_type, outer_diameter_in,
                           inner_diameter_in, top_md, bottom_md, burst_rating_bar,
                           collapse_rating_bar)
  VALUES (1, 1, 'production', 'production', 9.625, 8.681, 0, 3400, 548, 330),
         (2, 1, 'intermediate', 'intermediate', 13.375, 12.415, 0, 2000, 348, 150);
INSERT INTO tubing_string (id, well_id, name, outer_diameter_in, inner_diameter_in, top_md,
                           bottom_md, burst_rating_bar, collapse_rating_bar)
  VALUES (1, 1, 'tubing', 4.5, 3.958, 0, 3300, 580, 520);
INSERT INTO cement_interval (id, well_id, casing_string_id, top_md, bottom_md, verified_by)
  VALUES (1, 1, 1, 2500, 3400, 'CBL');
INSERT INTO annulus (id, well_id, name, inner_tubing_string_id, outer_casing_string_id,
                     fluid_gradient_bar_per_m)
  VALUES (1, 1, 'A', 1, 1, 0.101);
INSERT INTO critical_point (id, annulus_id, name, point_type, depth_md, tvd_m,
                            pressure_limit_bar)
  VALUES (1, 1, 'production packer', 'packer', 3280, 3000, 690);
INSERT INTO scada_tag (id, tag, annulus_id) VALUES (1, 'MIG-1/ANN-A/PT', 1);
INSERT INTO annulus_measurement (id, annulus_id, ts, source, pressure_bar, temperature_c,
                                 quality)
  VALUES ('00000000-0000-0000-0000-000000000001', 1, '2026-11-25T10:00:00Z', 'pi', 42.5, 31,
          'good');
INSERT INTO maasp_result (id, annulus_id, config_version, maasp_bar, limiting_point_id,
                          limiting_point_name, computed_at)
  VALUES (1, 1, 7, 310.5, 1, 'production packer', '2026-11-25T09:00:00Z');
INSERT INTO barrier_envelope (id, well_id, envelope_type, name)
  VALUES (1, 1, 'primary', 'primary barrier'), (2, 1, 'secondary', 'secondary barrier');
INSERT INTO barrier_element (id, envelope_id, name, element_type, status, depth_md)
  VALUES (1, 1, 'SSSV', 'sssv', 'ok', 400), (2, 2, 'production casing cement', 'cement',
          'ok', 3000);
INSERT INTO barrier_test (id, element_id, test_type, performed_at, result, test_pressure_bar,
                          leak_rate, leak_rate_unit, performed_by_id, notes)
  VALUES (1, 1, 'leak_rate', '2026-06-01T08:00:00Z', 'pass', 200, 0.2, 'm3/min', 1, 'ok');
INSERT INTO integrity_snapshot (id, event_id, well_id, ts, status, primary_envelope_status,
                                secondary_envelope_status, probability, consequence,
                                risk_score, risk_category, max_utilisation, sap_detected,
                                findings)
  VALUES (1, '00000000-0000-0000-0000-000000000002', 1, '2026-11-25T11:00:00Z', 'amber',
          'degraded', 'intact', 4, 4, 64, 'significant', 0.85, true, '[{"code": "x"}]'),
         (2, '00000000-0000-0000-0000-000000000003', 1, '2026-11-25T12:00:00Z', 'red',
          'failed', 'degraded', 5, 4, 80, 'high', 1.1, false, '[]');
UPDATE risk_matrix_cell SET category = 'significant' WHERE probability = 1 AND consequence = 1;
INSERT INTO task (id, well_id, annulus_id, barrier_element_id, title, trigger_type, target,
                  auto_generated, priority, status, due_at)
  VALUES (1, 1, 1, 1, 'Retest SSSV', 'failed_test', 'element:1', true, 'high', 'open',
          '2026-12-01T00:00:00Z');
INSERT INTO task_source_event (event_id, topic, task_id, action)
  VALUES ('00000000-0000-0000-0000-000000000004', 'wims.barrier-events', 1, 'created');
INSERT INTO alert (id, event_id, kind, severity, well_id, annulus_id, ts, message, payload,
                   kafka_partition, kafka_offset)
  VALUES (1, '00000000-0000-0000-0000-000000000005', 'maasp_warning', 'warning', 1, 1,
          '2026-11-25T10:00:00Z', 'A at 85%', '{}', 0, 17);
INSERT INTO outbox (id, topic, key, value) VALUES (1, 'wims.well-config', '1', '{}');
"""

T_READING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
T_TEST = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
T_SNAPSHOT = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
T_DUE = datetime(2026, 12, 1, tzinfo=UTC)

# What each row reads at head: (query, expected row), the renamed columns and mapped values.
AT_HEAD: list[tuple[str, tuple[Any, ...]]] = [
    ("SELECT password_hash FROM app_user", ("hash-1",)),
    (
        "SELECT type::text, country, completion_date, location::text FROM well",
        ("gas_producer", None, None, "subsea"),
    ),
    (
        "SELECT burst_limit_bar, collapse_limit_bar FROM casing_string ORDER BY id",
        (548.0, 330.0),
    ),
    ("SELECT burst_limit_bar, collapse_limit_bar FROM tubing_string", (580.0, 520.0)),
    (
        "SELECT casing_id, compressive_strength_mpa, quality_flag::text FROM cement_interval",
        (1, None, "OK"),
    ),
    ("SELECT fluid_type::text, fluid_gradient_bar_per_m FROM annulus", ("other", 0.101)),
    (
        "SELECT label, point_type::text, depth_md FROM critical_point",
        ("production packer", "packer", 3280.0),
    ),
    ("SELECT timestamp, pressure_bar FROM annulus_measurement", (T_READING, 42.5)),
    ("SELECT type::text, name FROM barrier_envelope ORDER BY id", ("primary", "primary barrier")),
    ("SELECT well_id, cement_quality_override FROM barrier_element ORDER BY id", (1, False)),
    (
        "SELECT barrier_element_id, test_type::text, test_date, pressure_applied_bar, comments"
        " FROM barrier_test",
        (1, "leak-rate", T_TEST, 200.0, "ok"),
    ),
    (
        "SELECT created_at, overall_status::text, primary_status::text, secondary_status::text,"
        " highest_annulus_utilisation, risk_category::text FROM integrity_snapshot ORDER BY id",
        (T_SNAPSHOT, "amber", "degraded", "intact", 0.85, "high"),
    ),
    (
        "SELECT risk_category::text FROM integrity_snapshot WHERE id = 2",
        ("extreme",),
    ),
    (
        "SELECT category::text FROM risk_matrix_cell WHERE probability_level = 1"
        " AND consequence_level = 1",
        ("high",),
    ),
    (
        "SELECT category::text FROM risk_matrix_cell WHERE probability_level = 5"
        " AND consequence_level = 5",
        ("extreme",),
    ),
    ("SELECT due_date, trigger_type::text FROM task", (T_DUE, "failed_test")),
]


def _dump(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by column name."""
    with psycopg.connect(settings.libpq_url, row_factory=dict_row) as conn:
        tables = [
            r["tablename"]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def test_0003_renames_in_place_keeping_every_row_and_value(empty_database: Settings) -> None:
    upgrade(empty_database, "0001")
    with psycopg.connect(empty_database.libpq_url) as conn:
        conn.execute(FILL_0001)
    before = _dump(empty_database)
    assert [t for t, rows in before.items() if not rows] == [], "every table holds a row"

    upgrade(empty_database)
    at_head = _dump(empty_database)
    # Every table of 0001 keeps every row (later revisions add tables of their own).
    assert {t: len(at_head[t]) for t in before} == {t: len(rows) for t, rows in before.items()}
    with psycopg.connect(empty_database.libpq_url) as conn:
        for query, expected in AT_HEAD:
            assert conn.execute(query).fetchone() == expected, query

    downgrade(empty_database, "0001")
    assert _dump(empty_database) == before


def test_partitioning_keeps_the_readings_both_ways(empty_database: Settings) -> None:
    """0004 turns annulus_measurement into weekly partitions: the readings stored before are
    all there after, rolled up, and all there again after a downgrade."""
    upgrade(empty_database, "0002")
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(days=d, minutes=d) for d in range(0, 60, 3)]
    times.append(datetime(2001, 1, 1, tzinfo=UTC))  # older than any partition made
    with psycopg.connect(empty_database.libpq_url) as conn:
        well = conn.execute(
            "INSERT INTO well (name, field, well_type, status, location, measured_depth,"
            " consequence_level) VALUES ('MIG-2', 'F', 'gas_producer', 'active', 'platform',"
            " 3000, 3) RETURNING id"
        ).fetchone()[0]
        a = conn.execute(
            "INSERT INTO annulus (well_id, name, fluid_gradient_bar_per_m) VALUES (%s, 'A', 0.1)"
            " RETURNING id",
            (well,),
        ).fetchone()[0]
        for i, t in enumerate(times):
            conn.execute(
                "INSERT INTO annulus_measurement (id, annulus_id, ts, source, pressure_bar,"
                " quality) VALUES (gen_random_uuid(), %s, %s, 'pi', %s, 'good')",
                (a, t, float(i)),
            )
        before = conn.execute(
            "SELECT id, annulus_id, ts, source, pressure_bar, quality FROM annulus_measurement"
            " ORDER BY ts"
        ).fetchall()
    assert len(before) == len(times)

    upgrade(empty_database)
    with psycopg.connect(empty_database.libpq_url) as conn:
        # At head the column has the specification's name (0003).
        after = conn.execute(
            "SELECT id, annulus_id, timestamp, source, pressure_bar, quality"
            " FROM annulus_measurement ORDER BY timestamp"
        ).fetchall()
        partitions = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT tableoid::regclass::text FROM annulus_measurement"
            ).fetchall()
        }
        rolled = conn.execute(
            "SELECT sum(reading_count), sum(sum_bar) FROM annulus_measurement_daily"
        ).fetchone()
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'annulus_measurement'"
        ).fetchone()[0]
    assert after == before
    assert kind == "p"
    assert "annulus_measurement_default" in partitions and len(partitions) > 5
    assert rolled == (len(times), float(sum(range(len(times)))))

    downgrade(empty_database, "0002")
    with psycopg.connect(empty_database.libpq_url) as conn:
        again = conn.execute(
            "SELECT id, annulus_id, ts, source, pressure_bar, quality FROM annulus_measurement"
            " ORDER BY ts"
        ).fetchall()
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'annulus_measurement'"
        ).fetchone()[0]
    assert again == before and kind == "r"


def test_0010_back_fills_the_whole_latest_reading_and_limiting_point(
    empty_database: Settings,
) -> None:
    """Annuli read before 0010 get their latest reading's temperature and source and their
    current MAASP's limiting point (what /wells/{id}/state now reads there)."""
    upgrade(empty_database, "0009")
    t = datetime(2026, 11, 30, 12, tzinfo=UTC)
    with psycopg.connect(empty_database.libpq_url) as conn:
        well = conn.execute(
            "INSERT INTO well (name, field, type, status, location, measured_depth,"
            " consequence_level) VALUES ('MIG-10', 'F', 'gas_producer', 'active', 'platform',"
            " 3000, 3) RETURNING id"
        ).fetchone()[0]
        a, b = (
            conn.execute(
                "INSERT INTO annulus (well_id, name, fluid_gradient_bar_per_m)"
                " VALUES (%s, %s, 0.1) RETURNING id",
                (well, name),
            ).fetchone()[0]
            for name in ("A", "B")
        )
        for ts, pressure, temperature, source in (
            (t, 90.0, 30.0, "pi"),
            (t + timedelta(minutes=1), 95.0, 31.5, "manual"),  # the latest
        ):
            conn.execute(
                "INSERT INTO annulus_measurement (id, annulus_id, timestamp, source,"
                " pressure_bar, temperature_c, quality)"
                " VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, 'good')",
                (a, ts, source, pressure, temperature),
            )
        for version, point in ((1, "shoe"), (2, "packer")):
            conn.execute(
                "INSERT INTO maasp_result (annulus_id, config_version, maasp_bar,"
                " limiting_point_name, computed_at) VALUES (%s, %s, 200, %s, now())",
                (a, version, point),
            )
        conn.execute(
            "INSERT INTO maasp_result (annulus_id, config_version, maasp_bar, computed_at)"
            " VALUES (%s, 1, 150, now())",  # no reading, no limiting point
            (b,),
        )

    upgrade(empty_database)
    query = (
        "SELECT annulus_id, reading_ts, pressure_bar, temperature_c, source, maasp_bar,"
        " limiting_point_name FROM fleet_annulus ORDER BY annulus_id"
    )
    with psycopg.connect(empty_database.libpq_url) as conn:
        assert conn.execute(query).fetchall() == [
            (a, t + timedelta(minutes=1), 95.0, 31.5, "manual", 200.0, "packer"),
            (b, None, None, None, None, 150.0, None),
        ]
    downgrade(empty_database, "0009")
    upgrade(empty_database)  # and back: the columns and functions come and go cleanly
