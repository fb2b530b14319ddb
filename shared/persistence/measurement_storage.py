"""Where readings are stored: weekly partitions of ``annulus_measurement``, made ahead of
time, dropped after the retention period, and the roll-ups kept longer.

``annulus_measurement`` is partitioned by range of the reading's time, one partition per
week (Monday 00:00 UTC), plus a default partition (migration 0004). Maintenance
(:func:`maintain`, run by the ingest service every ``measurement_maintenance_interval_s``
and by ``wims maintenance``):

1. creates the partitions of this week and the ``measurement_partitions_ahead_weeks``
   after it that do not exist yet. A reading that arrived before its week's partition (a
   stray in the default partition) is moved into the new partition in the same
   transaction, since PostgreSQL refuses to attach a partition whose rows sit in the
   default one;
2. with ``measurement_retention_days`` > 0, detaches and drops every weekly partition
   whose whole week is older than the retention period, and deletes the default
   partition's rows older than it. A partition holding any reading younger than the cut-off
   is kept, so retention never removes current data;
3. with ``measurement_hourly_retention_days`` > 0, deletes hourly roll-ups older than
   that. Daily roll-ups are kept.

Runs of several processes at once are harmless: each run takes a transaction-level
advisory lock and a run that does not get it does nothing.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

log = logging.getLogger(__name__)

TABLE = "annulus_measurement"
#: The reading's time column, the partition key (the one name to change if it is renamed).
TS = "timestamp"
DEFAULT_PARTITION = f"{TABLE}_default"
HOURLY = f"{TABLE}_hourly"
DAILY = f"{TABLE}_daily"
WEEK = timedelta(days=7)
#: Weeks start on Monday 00:00 UTC; 2000-01-03 was a Monday.
EPOCH = datetime(2000, 1, 3, tzinfo=UTC)
_PARTITION_NAME = re.compile(rf"^{TABLE}_(p[0-9]{{8}}|default)")
#: pg_advisory_xact_lock key of a maintenance run ("WIMSPART").
LOCK_KEY = 0x57494D5350415254


def include_name(name: str | None, type_: str, parent_names: object = None) -> bool:
    """Alembic's ``include_name`` hook: the partitions are made by maintenance, not by the
    models, so autogenerate and the drift check must not see them as tables to drop (their
    indexes are named after them and skipped with them)."""
    if name is None or type_ not in ("table", "index", "unique_constraint"):
        return True
    return _PARTITION_NAME.match(name) is None


def week_start(t: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding ``t``."""
    return EPOCH + WEEK * ((t - EPOCH) // WEEK)


def partition_name(start: datetime) -> str:
    return f"{TABLE}_p{start:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What one maintenance run does: weeks to create, partitions to drop, and the cut-off
    before which raw readings go (None: kept forever)."""

    create: tuple[datetime, ...]
    drop: tuple[str, ...]
    cutoff: datetime | None


def plan(
    existing: dict[str, datetime], now: datetime, ahead_weeks: int, retention_days: int
) -> Plan:
    """Pure: from the existing weekly partitions (name -> week start), the plan for ``now``.

    Creates this week and the ``ahead_weeks`` after it when missing; drops a partition only
    when its whole week ends at or before ``now - retention_days`` (0: never)."""
    this_week = week_start(now)
    have = set(existing.values())
    create = tuple(
        w for w in (this_week + WEEK * i for i in range(ahead_weeks + 1)) if w not in have
    )
    if retention_days <= 0:
        return Plan(create, (), None)
    cutoff = now - timedelta(days=retention_days)
    drop = tuple(sorted(n for n, start in existing.items() if start + WEEK <= cutoff))
    return Plan(create, drop, cutoff)


def covered_until(existing: dict[str, datetime], now: datetime) -> datetime:
    """The end of the unbroken run of weekly partitions from this week on (``now``'s week
    start if this week has none): readings before it land in a weekly partition."""
    have = set(existing.values())
    end = week_start(now)
    while end in have:
        end += WEEK
    return end


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    moved_from_default: int = 0
    dropped: list[str] = field(default_factory=list)
    deleted_from_default: int = 0
    deleted_hourly: int = 0
    covered_until: datetime | None = None
    skipped: bool = False  # another process held the maintenance lock

    def lines(self) -> list[str]:
        if self.skipped:
            return ["another process is running maintenance: nothing done"]
        return [
            f"partitions created: {', '.join(self.created) or 'none'}"
            + (
                f" ({self.moved_from_default} readings moved in from the default partition)"
                if self.moved_from_default
                else ""
            ),
            f"partitions dropped (retention): {', '.join(self.dropped) or 'none'}",
            f"default partition rows deleted (retention): {self.deleted_from_default}",
            f"hourly roll-ups deleted (retention): {self.deleted_hourly}",
            f"weekly partitions ready until {self.covered_until:%Y-%m-%d %H:%M} UTC"
            if self.covered_until
            else "no weekly partition covers now",
        ]


def weekly_partitions(conn: psycopg.Connection) -> dict[str, datetime]:
    """The weekly partitions attached to the table: name -> week start (from its bounds)."""
    rows = conn.execute(
        """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = %s::regclass
        """,
        (TABLE,),
    ).fetchall()
    weeks: dict[str, datetime] = {}
    for name, bound in rows:
        if bound == "DEFAULT":
            continue
        # FOR VALUES FROM ('2026-11-30 00:00:00+00') TO ('2026-12-07 00:00:00+00')
        lower = bound.split("'")[1]
        weeks[name] = datetime.fromisoformat(lower).astimezone(UTC)
    return weeks


def _create(conn: psycopg.Connection, start: datetime) -> int:
    """Create one week's partition; returns the strays moved into it from the default."""
    name, end = partition_name(start), start + WEEK
    # Writers to the default partition wait until the new partition is attached, so no
    # reading of that week can slip into the default meanwhile (ATTACH would then refuse).
    conn.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    moved = conn.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE {TS} >= %s AND {TS} < %s "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
        (start, end),
    ).rowcount
    # Bounds are literals (DDL takes no parameters), made here from a datetime.
    conn.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )
    return max(moved, 0)


def maintain(
    conn: psycopg.Connection,
    now: datetime,
    ahead_weeks: int,
    retention_days: int,
    hourly_retention_days: int,
) -> Report:
    """One maintenance run, in one transaction on ``conn`` (not autocommit)."""
    report = Report()
    with conn.transaction():
        locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
        if not (locked and locked[0]):
            report.skipped = True
            return report
        # Never queue behind a long query holding the table, with every reader behind us.
        conn.execute("SET LOCAL lock_timeout = '10s'")
        existing = weekly_partitions(conn)
        todo = plan(existing, now, ahead_weeks, retention_days)
        for start in todo.create:
            report.moved_from_default += _create(conn, start)
            report.created.append(partition_name(start))
            existing[partition_name(start)] = start
        for name in todo.drop:
            conn.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            conn.execute(f"DROP TABLE {name}")
            report.dropped.append(name)
            del existing[name]
        if todo.cutoff is not None:
            report.deleted_from_default = conn.execute(
                f"DELETE FROM {DEFAULT_PARTITION} WHERE {TS} < %s", (todo.cutoff,)
            ).rowcount
        if hourly_retention_days > 0:
            report.deleted_hourly = conn.execute(
                f"DELETE FROM {HOURLY} WHERE bucket_start < %s",
                (now - timedelta(days=hourly_retention_days),),
            ).rowcount
        report.covered_until = covered_until(existing, now)
    log.info("measurement maintenance: %s", "; ".join(report.lines()))
    return report
