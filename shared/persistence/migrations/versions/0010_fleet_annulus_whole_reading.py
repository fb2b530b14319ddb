"""fleet_annulus holds the whole latest reading and the limiting point: GET /wells/{id}/state
reads it instead of probing the measurement partitions

GET /wells/{id}/state found each annulus's latest reading with ``ORDER BY timestamp DESC
LIMIT 1`` on ``annulus_measurement``. The table is partitioned by time (migration 0004), so
that is one index probe per partition per annulus, growing with the retention (a year of
weekly partitions: some 55 probes per annulus), and it was a sixth of PostgreSQL's CPU on a
/state read with six partitions (measured). ``fleet_annulus`` already keeps each annulus's
latest reading and current MAASP, current in the writers' own transactions (migration 0008);
it now keeps the rest of what /state shows of them (the reading's temperature and source,
the MAASP's limiting point), so /state reads one row per annulus whatever the partitions.

The triggers of migration 0008 are replaced by the same rules over more columns; the new
columns are back-filled from the rows the read model already points at.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As migration 0008's, with the new columns. A reading's key is (annulus, timestamp,
# source): of two readings at the same instant the first stored is kept, as the newest-first
# probe it replaces picked either.
_FUNCTIONS = """
CREATE OR REPLACE FUNCTION fleet_annulus_from_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_annulus AS f (annulus_id, reading_ts, pressure_bar, quality, temperature_c,
                                  source)
  SELECT * FROM (SELECT DISTINCT ON (annulus_id) annulus_id, timestamp, pressure_bar, quality,
                        temperature_c, source
                   FROM new_rows ORDER BY annulus_id, timestamp DESC) latest ORDER BY annulus_id
  ON CONFLICT (annulus_id) DO UPDATE
    SET reading_ts = EXCLUDED.reading_ts, pressure_bar = EXCLUDED.pressure_bar,
        quality = EXCLUDED.quality, temperature_c = EXCLUDED.temperature_c,
        source = EXCLUDED.source
    WHERE f.reading_ts IS NULL OR EXCLUDED.reading_ts > f.reading_ts;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION fleet_annulus_after_measurement_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE fleet_annulus f
     SET reading_ts = m.timestamp, pressure_bar = m.pressure_bar, quality = m.quality,
         temperature_c = m.temperature_c, source = m.source
    FROM (SELECT DISTINCT annulus_id FROM old_rows) gone
    LEFT JOIN LATERAL (SELECT timestamp, pressure_bar, quality, temperature_c, source
                         FROM annulus_measurement
                        WHERE annulus_id = gone.annulus_id ORDER BY timestamp DESC LIMIT 1) m ON true
   WHERE f.annulus_id = gone.annulus_id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION fleet_annulus_from_maasp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_annulus AS f (annulus_id, maasp_config_version, maasp_bar,
                                  limiting_point_name)
  SELECT * FROM (SELECT DISTINCT ON (annulus_id) annulus_id, config_version, maasp_bar,
                        limiting_point_name
                   FROM new_rows ORDER BY annulus_id, config_version DESC) latest
   ORDER BY annulus_id
  ON CONFLICT (annulus_id) DO UPDATE
    SET maasp_config_version = EXCLUDED.maasp_config_version,
        maasp_bar = EXCLUDED.maasp_bar, limiting_point_name = EXCLUDED.limiting_point_name
    WHERE f.maasp_config_version IS NULL
       OR EXCLUDED.maasp_config_version > f.maasp_config_version;
  RETURN NULL;
END $$;
"""

# The reading the row already shows (of same-instant readings, the one with its pressure
# and quality).
_BACKFILL = """
UPDATE fleet_annulus f
   SET (temperature_c, source) = (
       SELECT m.temperature_c, m.source FROM annulus_measurement m
        WHERE m.annulus_id = f.annulus_id AND m.timestamp = f.reading_ts
        ORDER BY m.pressure_bar IS NOT DISTINCT FROM f.pressure_bar DESC,
                 m.quality IS NOT DISTINCT FROM f.quality DESC, m.source
        LIMIT 1)
 WHERE f.reading_ts IS NOT NULL;
UPDATE fleet_annulus f SET limiting_point_name = r.limiting_point_name
  FROM maasp_result r
 WHERE r.annulus_id = f.annulus_id AND r.config_version = f.maasp_config_version;
"""

# Migration 0008's functions, for the downgrade.
_FUNCTIONS_0008 = """
CREATE OR REPLACE FUNCTION fleet_annulus_from_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION fleet_annulus_after_measurement_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE fleet_annulus f
     SET reading_ts = m.timestamp, pressure_bar = m.pressure_bar, quality = m.quality
    FROM (SELECT DISTINCT annulus_id FROM old_rows) gone
    LEFT JOIN LATERAL (SELECT timestamp, pressure_bar, quality FROM annulus_measurement
                        WHERE annulus_id = gone.annulus_id ORDER BY timestamp DESC LIMIT 1) m ON true
   WHERE f.annulus_id = gone.annulus_id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION fleet_annulus_from_maasp() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


def upgrade() -> None:
    op.add_column("fleet_annulus", sa.Column("temperature_c", sa.Float(), nullable=True))
    op.add_column("fleet_annulus", sa.Column("source", sa.String(100), nullable=True))
    op.add_column("fleet_annulus", sa.Column("limiting_point_name", sa.String(100), nullable=True))
    op.execute(_FUNCTIONS)
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.execute(_FUNCTIONS_0008)
    op.drop_column("fleet_annulus", "limiting_point_name")
    op.drop_column("fleet_annulus", "source")
    op.drop_column("fleet_annulus", "temperature_c")
