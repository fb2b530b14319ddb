"""Fleet change notifications: a NOTIFY on channel ``wims_fleet`` when a well's row of
GET /fleet may have changed

The API keeps the well-level part of GET /fleet (a well's names and status, its latest
snapshot's colour and risk, its open-task counts) in memory and rebuilds it only when
PostgreSQL says one of its sources changed (services/api/fleet.py, ``FleetWells``;
docs/decisions.md, "The fleet read model"). The sources are ``well``, ``fleet_well`` (which
the integrity snapshots' trigger keeps) and ``task``. One statement-level trigger per table
and operation sends one notification per statement; PostgreSQL folds repeats within a
transaction and delivers a notification only when its transaction commits, so a listener
never hears of a change it cannot yet read. TRUNCATE does not fire row triggers: it has its
own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("well", "fleet_well", "task")


def upgrade() -> None:
    op.execute(
        """
CREATE FUNCTION fleet_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wims_fleet', TG_TABLE_NAME);
  RETURN NULL;
END $$;
"""
    )
    for table in SOURCES:
        op.execute(
            f"CREATE TRIGGER fleet_notify_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fleet_notify_change()"
        )
        op.execute(
            f"CREATE TRIGGER fleet_notify_{table}_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fleet_notify_change()"
        )


def downgrade() -> None:
    for table in SOURCES:
        op.execute(f"DROP TRIGGER fleet_notify_{table}_truncate ON {table}")
        op.execute(f"DROP TRIGGER fleet_notify_{table} ON {table}")
    op.execute("DROP FUNCTION fleet_notify_change()")
