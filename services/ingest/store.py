"""The ingest service's SQL, all of it: the reference data validation needs (lookups.py),
the credentials a push is checked against (auth.py), the readings sink's writes into
``annulus_measurement`` (pump.py) and the connection its maintenance runs on
(maintenance.py; the statements themselves are shared/persistence/measurement_storage.py's).

The sink's write of one batch (``write_lines``):

- **Fast path.** The batch is COPYed straight into ``annulus_measurement``, as a statement
  of its own on an autocommit connection (so all or nothing). This is the common case (new
  readings for existing annuli) and costs what a bare COPY costs.
- **Slow path.** If that COPY hits a row already stored (a re-pushed batch, or the replay
  after a crash) or an annulus deleted meanwhile, it stores nothing and the batch goes
  through a temporary staging table and ``INSERT ... SELECT ... ON CONFLICT DO
  NOTHING``, which keeps the new rows and drops the rest. A reading's id is its event id,
  derived from (annulus, timestamp, source), and (annulus_id, timestamp, source) is unique, so a
  replayed reading stores no second row.
"""

from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.infrastructure.settings import Settings
from shared.persistence.measurement_storage import Report, maintain


async def load_references(engine: AsyncEngine) -> tuple[dict[int, int], dict[str, int]]:
    """(annulus id -> well id, SCADA tag -> annulus id), as the tables hold them now."""
    async with engine.connect() as conn:
        annuli = (await conn.execute(text("SELECT id, well_id FROM annulus"))).all()
        tags = (await conn.execute(text("SELECT tag, annulus_id FROM scada_tag"))).all()
    return {int(a): int(w) for a, w in annuli}, {str(t): int(a) for t, a in tags}


async def api_key_row(engine: AsyncEngine, key_hash: str) -> Any:
    """(source, revoked_at) of the API key with this hash, or None."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT source, revoked_at FROM api_key WHERE key_hash = :h"),
                {"h": key_hash},
            )
        ).first()


async def app_user_row(engine: AsyncEngine, user_id: int) -> Any:
    """(role, is_active, token_version) of the user, or None."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT role, is_active, token_version FROM app_user WHERE id = :id"),
                {"id": user_id},
            )
        ).first()


def run_maintenance(settings: Settings, now: datetime | None = None) -> Report:
    """One maintenance run of ``annulus_measurement`` on a connection of its own."""
    with psycopg.connect(settings.libpq_url, connect_timeout=10) as conn:
        return maintain(
            conn,
            now or datetime.now(UTC),
            settings.measurement_partitions_ahead_weeks,
            settings.measurement_retention_days,
            settings.measurement_hourly_retention_days,
        )


async def connect_sink(settings: Settings) -> psycopg.AsyncConnection:
    """The sink's connection: autocommit, as ``write_lines`` needs."""
    return await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True)


# The readings topic calls the time ``ts`` (the ingest wire format); the table ``timestamp``.
# core.copy_line writes a line of these columns, in this order.
COLUMNS = "id, annulus_id, timestamp, source, pressure_bar, temperature_c, quality, received_at"

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS sink_stage (
    id uuid, annulus_id bigint, timestamp timestamptz, source text,
    pressure_bar double precision, temperature_c double precision,
    quality text, received_at timestamptz
) ON COMMIT DELETE ROWS
"""
_MOVE = f"""
INSERT INTO annulus_measurement ({COLUMNS})
SELECT s.id, s.annulus_id, s.timestamp, s.source, s.pressure_bar, s.temperature_c,
       s.quality::reading_quality, s.received_at
FROM sink_stage s
WHERE EXISTS (SELECT 1 FROM annulus a WHERE a.id = s.annulus_id)
ON CONFLICT DO NOTHING
"""
_DROPPED = "SELECT count(*) FROM sink_stage s WHERE NOT EXISTS (SELECT 1 FROM annulus a WHERE a.id = s.annulus_id)"


async def _staged_write(cur: psycopg.AsyncCursor, data: str, count: int) -> tuple[int, int]:
    await cur.execute(_STAGE_DDL)
    async with cur.copy(f"COPY sink_stage ({COLUMNS}) FROM STDIN") as copy:
        await copy.write(data)
    await cur.execute(_MOVE)
    inserted = max(cur.rowcount, 0)
    dropped = 0
    if inserted < count:  # duplicates or deleted annuli: only then pay for the count
        await cur.execute(_DROPPED)
        row = await cur.fetchone()
        dropped = int(row[0]) if row else 0
    return inserted, dropped


async def write_lines(
    conn: psycopg.AsyncConnection, lines: list[str], fast: bool = True
) -> tuple[int, int, bool]:
    """Write one batch atomically: (rows inserted, rows dropped, staged).

    ``conn`` must be in autocommit mode: the direct COPY is then a transaction of its own,
    all or nothing, with no BEGIN/SAVEPOINT/COMMIT round trips. ``fast`` tries it first;
    ``staged`` says the batch went through the staging table instead (the direct COPY hit
    a conflict, or was not tried)."""
    if not conn.autocommit:
        raise ValueError("write_lines needs an autocommit connection")
    data = "".join(lines)
    if fast:
        try:
            async with (
                conn.cursor() as cur,
                cur.copy(f"COPY annulus_measurement ({COLUMNS}) FROM STDIN") as copy,
            ):
                await copy.write(data)
            return len(lines), 0, False
        except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation):
            pass  # rolled back whole: nothing of this batch is stored
    async with conn.transaction(), conn.cursor() as cur:
        inserted, dropped = await _staged_write(cur, data, len(lines))
    return inserted, dropped, True
