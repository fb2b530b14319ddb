"""The integrity worker's database side: the snapshots it writes (``integrity_snapshot``,
idempotent per derived event id) and the risk matrix it reads (``risk_matrix_cell``).
What is done with them is in services.integrity.processing."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.contracts.events import IntegritySnapshot
from shared.persistence.models import IntegritySnapshot as SnapshotRow
from shared.persistence.models import RiskMatrixCell


async def read_risk_matrix_cells(engine: AsyncEngine) -> Sequence[Row]:
    """Every cell of the risk matrix as (probability_level, consequence_level, category)."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                select(
                    RiskMatrixCell.probability_level,
                    RiskMatrixCell.consequence_level,
                    RiskMatrixCell.category,
                )
            )
        ).all()


async def insert_snapshot(engine: AsyncEngine, s: IntegritySnapshot) -> bool:
    """Store one snapshot; False when its event id was stored before (a replay)."""
    stmt = (
        pg_insert(SnapshotRow)
        .values(
            event_id=s.event_id,
            well_id=s.well_id,
            created_at=s.created_at,
            overall_status=s.overall_status,
            primary_status=s.primary_status,
            secondary_status=s.secondary_status,
            probability=s.probability,
            consequence=s.consequence,
            risk_score=s.risk_score,
            risk_category=s.risk_category,
            highest_annulus_utilisation=s.highest_annulus_utilisation,
            sap_detected=s.sap_detected,
            findings=s.findings,
            assessed=s.assessed,
            assessment_gaps=s.assessment_gaps,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(SnapshotRow.id)
    )
    async with engine.begin() as conn:
        inserted = (await conn.execute(stmt)).first()
    # No row back: this event id was written before (a replay), nothing new stored.
    return inserted is not None
