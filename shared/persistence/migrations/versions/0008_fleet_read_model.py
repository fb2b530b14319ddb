"""The fleet read model: fleet_annulus and fleet_well, kept current by triggers

GET /fleet aggregated, per request, the latest measurement and MAASP of every annulus and
the latest integrity snapshot of every well (three LATERAL probes per well): ~45 requests/s
at most over 500 wells. These two tables hold exactly those latest rows, one per annulus and
one per well, maintained by statement-level AFTER triggers on the tables the writers
already write (the ingest sink's COPY and its staged INSERT, the MAASP worker's
maasp_result, the integrity worker's snapshot), in the writer's own transaction: the read
model is never behind its source and no writer has to know about it. A trigger looks at
the statement's new rows only (a transition table), one upsert per statement, and keeps a
row only when it is newer than the stored one, so replays and out-of-order batches leave
it as the aggregate would. Deleted measurements recompute their annuli's latest reading.

Reviewed by hand. The source columns the triggers read are all named in the SQL below
(annulus_measurement.timestamp, integrity_snapshot.created_at/overall_status/risk_score/
risk_category): a rename
of one of them must recreate these functions. Upgrade back-fills both tables from the
history; downgrade drops them with their triggers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str) -> postgresql.ENUM:
    return postgresql.ENUM(name=name, create_type=False)


# DISTINCT ON keeps one row per key, so an upsert never meets the same key twice in one
# statement; ORDER BY the key takes the row locks in one order (no deadlock between two
# writers). ``IS DISTINCT FROM``/row comparisons keep only what is newer.
_FUNCTIONS = """
CREATE FUNCTION fleet_annulus_from_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_annulus AS f (annulus_id, reading_ts, pressure_bar, quality)
  SELECT * FROM (SELECT DISTINCT ON (annulus_id) annulus_id, timestamp, pressure_bar, quality
                   FROM new_rows ORDER BY annulus_id, timestamp DESC) latest ORDER BY annulus_id
  ON CONFLICT (annulus_id) DO UPDATE
    SET reading_ts = EXCLUDED.reading_ts, pressure_bar = EXCLUDED.pressure_bar,
        quality = EXCLUDED.quality
    WHERE f.reading_ts IS NULL OR EXCLUDED.reading_ts > f.reading_ts;
  RETURN NULL;
END $$;

CREATE FUNCTION fleet_annulus_after_measurement_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE fleet_annulus f
     SET reading_ts = m.timestamp, pressure_bar = m.pressure_bar, quality = m.quality
    FROM (SELECT DISTINCT annulus_id FROM old_rows) gone
    LEFT JOIN LATERAL (SELECT timestamp, pressure_bar, quality FROM annulus_measurement
                        WHERE annulus_id = gone.annulus_id ORDER BY timestamp DESC LIMIT 1) m ON true
   WHERE f.annulus_id = gone.annulus_id;
  RETURN NULL;
END $$;

CREATE FUNCTION fleet_annulus_from_maasp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_annulus AS f (annulus_id, maasp_config_version, maasp_bar)
  SELECT * FROM (SELECT DISTINCT ON (annulus_id) annulus_id, config_version, maasp_bar
                   FROM new_rows ORDER BY annulus_id, config_version DESC) latest
   ORDER BY annulus_id
  ON CONFLICT (annulus_id) DO UPDATE
    SET maasp_config_version = EXCLUDED.maasp_config_version,
        maasp_bar = EXCLUDED.maasp_bar
    WHERE f.maasp_config_version IS NULL
       OR EXCLUDED.maasp_config_version > f.maasp_config_version;
  RETURN NULL;
END $$;

CREATE FUNCTION fleet_well_from_snapshots() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_well AS f (well_id, snapshot_ts, snapshot_id, colour, risk_score,
                               risk_category, assessed, assessment_gaps)
  SELECT * FROM (SELECT DISTINCT ON (well_id) well_id, created_at, id, overall_status,
                        risk_score, risk_category, assessed, assessment_gaps
                   FROM new_rows ORDER BY well_id, created_at DESC, id DESC) latest ORDER BY well_id
  ON CONFLICT (well_id) DO UPDATE
    SET snapshot_ts = EXCLUDED.snapshot_ts, snapshot_id = EXCLUDED.snapshot_id,
        colour = EXCLUDED.colour, risk_score = EXCLUDED.risk_score,
        risk_category = EXCLUDED.risk_category, assessed = EXCLUDED.assessed,
        assessment_gaps = EXCLUDED.assessment_gaps
    WHERE (EXCLUDED.snapshot_ts, EXCLUDED.snapshot_id) > (f.snapshot_ts, f.snapshot_id);
  RETURN NULL;
END $$;

CREATE TRIGGER fleet_annulus_measurements AFTER INSERT ON annulus_measurement
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_annulus_from_measurements();
CREATE TRIGGER fleet_annulus_measurements_deleted AFTER DELETE ON annulus_measurement
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_annulus_after_measurement_delete();
CREATE TRIGGER fleet_annulus_maasp AFTER INSERT ON maasp_result
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_annulus_from_maasp();
CREATE TRIGGER fleet_well_snapshots AFTER INSERT ON integrity_snapshot
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_well_from_snapshots();
"""

_BACKFILL = """
INSERT INTO fleet_annulus (annulus_id, reading_ts, pressure_bar, quality,
                           maasp_config_version, maasp_bar)
SELECT a.id, m.timestamp, m.pressure_bar, m.quality, r.config_version, r.maasp_bar
  FROM annulus a
  LEFT JOIN LATERAL (SELECT timestamp, pressure_bar, quality FROM annulus_measurement
                      WHERE annulus_id = a.id ORDER BY timestamp DESC LIMIT 1) m ON true
  LEFT JOIN LATERAL (SELECT config_version, maasp_bar FROM maasp_result
                      WHERE annulus_id = a.id ORDER BY config_version DESC LIMIT 1) r ON true
 WHERE m.timestamp IS NOT NULL OR r.config_version IS NOT NULL;
INSERT INTO fleet_well (well_id, snapshot_ts, snapshot_id, colour, risk_score, risk_category,
                        assessed, assessment_gaps)
SELECT DISTINCT ON (well_id) well_id, created_at, id, overall_status, risk_score, risk_category,
       assessed, assessment_gaps
  FROM integrity_snapshot ORDER BY well_id, created_at DESC, id DESC;
"""


def upgrade() -> None:
    op.create_table(
        "fleet_annulus",
        sa.Column("annulus_id", sa.Integer(), nullable=False),
        sa.Column("reading_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pressure_bar", sa.Float(), nullable=True),
        sa.Column("quality", _enum("reading_quality"), nullable=True),
        sa.Column("maasp_config_version", sa.BigInteger(), nullable=True),
        sa.Column("maasp_bar", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["annulus_id"],
            ["annulus.id"],
            name=op.f("fk_fleet_annulus_annulus_id_annulus"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("annulus_id", name=op.f("pk_fleet_annulus")),
    )
    op.create_table(
        "fleet_well",
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("snapshot_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("colour", _enum("integrity_status"), nullable=False),
        sa.Column("risk_score", sa.SmallInteger(), nullable=False),
        sa.Column("risk_category", _enum("risk_category"), nullable=False),
        sa.Column("assessed", sa.Boolean(), nullable=False),
        sa.Column("assessment_gaps", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["well_id"], ["well.id"], name=op.f("fk_fleet_well_well_id_well"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("well_id", name=op.f("pk_fleet_well")),
    )
    # Rewritten with every batch of readings: room on each page keeps those updates HOT (no
    # new index entry, no page split); the table has one row per annulus, so it stays small.
    op.execute("ALTER TABLE fleet_annulus SET (fillfactor = 50)")
    op.execute(_FUNCTIONS)
    op.execute(_BACKFILL)


def downgrade() -> None:
    for trigger, table in (
        ("fleet_annulus_measurements", "annulus_measurement"),
        ("fleet_annulus_measurements_deleted", "annulus_measurement"),
        ("fleet_annulus_maasp", "maasp_result"),
        ("fleet_well_snapshots", "integrity_snapshot"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in (
        "fleet_annulus_from_measurements",
        "fleet_annulus_after_measurement_delete",
        "fleet_annulus_from_maasp",
        "fleet_well_from_snapshots",
    ):
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("fleet_well")
    op.drop_table("fleet_annulus")
