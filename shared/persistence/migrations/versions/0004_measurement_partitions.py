"""annulus_measurement partitioned by week, with hourly and daily roll-ups

Reviewed by hand (autogenerate knows neither partitioning nor triggers):

- ``annulus_measurement`` becomes a table partitioned by range of the reading's time, one
  partition per ISO week (Monday 00:00 UTC), plus a default partition that catches a
  reading no weekly partition covers, so no reading is ever refused for want of one. The
  existing rows are moved into it: the old table is renamed, the new one created, partitions
  made for the weeks that hold rows (the last two years; older rows land in the default
  partition, which retention empties) and for this week and the four after it, the rows
  copied, the old table dropped.
- Its primary key is (annulus_id, ts, source), the reading's identity: a partitioned
  table's unique keys must contain the partition key, and this one does. It is the key that
  keeps a re-pushed or replayed reading from being stored twice (the sink's COPY fails on it
  and falls back to ``INSERT ... ON CONFLICT DO NOTHING``), as the unique constraint did
  before. The separate primary key on ``id`` and the index on (annulus_id, ts) go: ``id``
  is derived from the same three fields, and the key's index serves the range and latest-
  reading queries on its (annulus_id, ts) prefix. Two indexes fewer per reading.
- ``annulus_measurement_hourly`` and ``annulus_measurement_daily`` hold min / max / sum /
  count / last of the usable (not bad, with a value) pressure per annulus and UTC hour or
  day. A statement-level AFTER INSERT trigger adds each statement's *inserted* rows to them
  (its transition table holds only the rows really stored, so a replay that inserts nothing
  adds nothing): the roll-ups equal an aggregation of the raw rows by construction, whoever
  writes. Dropping old raw partitions does not touch them.

Downgrade moves the rows back into a plain table with the old keys and drops the roll-ups.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alembic import op
from sqlalchemy import text

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The reading's time column, the partition key: the one name to change if it is renamed.
TS = "timestamp"
TABLE = "annulus_measurement"
COLUMNS = f"id, annulus_id, {TS}, source, pressure_bar, temperature_c, quality, received_at"
# Weeks start on Monday 00:00 UTC; 2000-01-03 was a Monday.
EPOCH = datetime(2000, 1, 3, tzinfo=UTC)
WEEK = timedelta(days=7)
AHEAD_WEEKS = 4
HISTORY_WEEKS = 104

_COLUMNS_DDL = f"""
    id uuid NOT NULL,
    annulus_id integer NOT NULL,
    {TS} timestamptz NOT NULL,
    source varchar(100) NOT NULL,
    pressure_bar double precision,
    temperature_c double precision,
    quality reading_quality NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fk_annulus_measurement_annulus_id_annulus FOREIGN KEY (annulus_id)
        REFERENCES annulus (id) ON DELETE CASCADE"""

_ROLLUP_TABLE = """
CREATE TABLE {name} (
    annulus_id integer NOT NULL,
    bucket_start timestamptz NOT NULL,
    min_bar double precision NOT NULL,
    max_bar double precision NOT NULL,
    sum_bar double precision NOT NULL,
    reading_count bigint NOT NULL,
    last_ts timestamptz NOT NULL,
    last_bar double precision NOT NULL,
    CONSTRAINT pk_{name} PRIMARY KEY (annulus_id, bucket_start),
    CONSTRAINT fk_{name}_annulus_id_annulus FOREIGN KEY (annulus_id)
        REFERENCES annulus (id) ON DELETE CASCADE
)"""

# One statement per insert into annulus_measurement: its inserted rows, grouped by annulus
# and UTC hour (only usable readings: bad ones are never used in a calculation), merged into
# the hourly roll-up, and those hourly groups merged into the daily one. Sorted, so two
# writers touching the same buckets lock them in the same order.
_MERGE = """
  ON CONFLICT (annulus_id, bucket_start) DO UPDATE SET
    min_bar = least(r.min_bar, excluded.min_bar),
    max_bar = greatest(r.max_bar, excluded.max_bar),
    sum_bar = r.sum_bar + excluded.sum_bar,
    reading_count = r.reading_count + excluded.reading_count,
    last_bar = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_bar ELSE r.last_bar END,
    last_ts = greatest(r.last_ts, excluded.last_ts)"""
_ROLLUP_FUNCTION = f"""
CREATE FUNCTION annulus_measurement_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH hours AS (
    SELECT annulus_id,
           date_bin('1 hour', {TS}, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket_start,
           min(pressure_bar) AS min_bar, max(pressure_bar) AS max_bar,
           sum(pressure_bar) AS sum_bar, count(*) AS reading_count, max({TS}) AS last_ts,
           (array_agg(pressure_bar ORDER BY {TS} DESC, source DESC))[1] AS last_bar
      FROM new_rows
     WHERE quality <> 'bad' AND pressure_bar IS NOT NULL
     GROUP BY 1, 2
  ), hourly AS (
    INSERT INTO annulus_measurement_hourly AS r
    SELECT * FROM hours ORDER BY annulus_id, bucket_start
    {_MERGE}
  )
  INSERT INTO annulus_measurement_daily AS r
  SELECT annulus_id, date_bin('1 day', bucket_start, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
         min(min_bar), max(max_bar), sum(sum_bar), sum(reading_count), max(last_ts),
         (array_agg(last_bar ORDER BY last_ts DESC))[1]
    FROM hours GROUP BY 1, 2 ORDER BY 1, 2
  {_MERGE};
  RETURN NULL;
END
$$"""


def _week_start(t: datetime) -> datetime:
    return EPOCH + WEEK * ((t - EPOCH) // WEEK)


def _create_week(start: datetime) -> None:
    # DDL takes no bind parameters: the bounds are literals (made here, never user input).
    op.execute(
        f"CREATE TABLE {TABLE}_p{start:%Y%m%d} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + WEEK).isoformat()}')"
    )


def upgrade() -> None:
    op.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_old")
    op.execute(f"ALTER TABLE {TABLE}_old RENAME CONSTRAINT pk_{TABLE} TO pk_{TABLE}_old")
    op.execute(
        f"ALTER TABLE {TABLE}_old RENAME CONSTRAINT uq_{TABLE}_annulus_id_{TS}_source "
        f"TO uq_{TABLE}_old"
    )
    op.execute(f"DROP INDEX ix_{TABLE}_annulus_id_{TS}")
    op.execute(
        f"CREATE TABLE {TABLE} ({_COLUMNS_DDL},\n"
        f"    CONSTRAINT pk_{TABLE} PRIMARY KEY (annulus_id, {TS}, source)\n"
        f") PARTITION BY RANGE ({TS})"
    )
    op.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    now = datetime.now(UTC)
    this_week = _week_start(now)
    weeks = {this_week + WEEK * i for i in range(AHEAD_WEEKS + 1)}
    rows = op.get_bind().execute(
        text(
            f"SELECT DISTINCT date_bin('7 days', {TS}, :epoch) FROM {TABLE}_old "
            f"WHERE {TS} >= :since AND {TS} < :until"
        ),
        {"epoch": EPOCH, "since": this_week - WEEK * HISTORY_WEEKS, "until": this_week},
    )
    weeks.update(r[0].astimezone(UTC) for r in rows)  # named by their UTC date
    for start in sorted(weeks):
        _create_week(start)
    for name in ("annulus_measurement_hourly", "annulus_measurement_daily"):
        op.execute(_ROLLUP_TABLE.format(name=name))
    op.execute(_ROLLUP_FUNCTION)
    op.execute(
        f"CREATE TRIGGER annulus_measurement_rollup AFTER INSERT ON {TABLE} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION annulus_measurement_rollup()"
    )
    # One statement: the trigger rolls the existing rows up as they move.
    op.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}_old")
    op.execute(f"DROP TABLE {TABLE}_old")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_partitioned")
    op.execute(f"ALTER TABLE {TABLE}_partitioned RENAME CONSTRAINT pk_{TABLE} TO pk_{TABLE}_p")
    op.execute(
        f"CREATE TABLE {TABLE} ({_COLUMNS_DDL},\n"
        f"    CONSTRAINT pk_{TABLE} PRIMARY KEY (id),\n"
        f"    CONSTRAINT uq_{TABLE}_annulus_id_{TS}_source UNIQUE (annulus_id, {TS}, source)\n)"
    )
    op.execute(f"CREATE INDEX ix_{TABLE}_annulus_id_{TS} ON {TABLE} (annulus_id, {TS})")
    op.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}_partitioned")
    op.execute(f"DROP TABLE {TABLE}_partitioned")  # its partitions and trigger with it
    op.execute("DROP FUNCTION annulus_measurement_rollup()")
    op.execute("DROP TABLE annulus_measurement_daily")
    op.execute("DROP TABLE annulus_measurement_hourly")
