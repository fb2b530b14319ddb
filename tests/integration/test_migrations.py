"""Alembic migrations on a real PostgreSQL: up, down, up again, and no drift from the models."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from shared.measurement_storage import include_name
from shared.migrate import downgrade, upgrade
from shared.models import Base
from shared.settings import Settings


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
            "INSERT INTO well (name, field, well_type, status, location, measured_depth,"
            " consequence_level) VALUES ('MIG-1', 'F', 'oil_producer', 'active', 'platform',"
            " 3000, 3) RETURNING id"
        ).fetchone()[0]
        annulus_id = conn.execute(
            "INSERT INTO annulus (well_id, name, fluid_gradient_bar_per_m) VALUES (%s, 'A', 0.1)"
            " RETURNING id",
            (well_id,),
        ).fetchone()[0]
        insert = (
            "INSERT INTO annulus_measurement (id, annulus_id, ts, source, pressure_bar, quality)"
            " VALUES (gen_random_uuid(), %s, '2026-11-25T10:00:00Z', 'pi', 10, 'good')"
        )
        conn.execute(insert, (annulus_id,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, (annulus_id,))
        conn.rollback()


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
        after = conn.execute(
            "SELECT id, annulus_id, ts, source, pressure_bar, quality FROM annulus_measurement"
            " ORDER BY ts"
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
