"""The findings sweep against real PostgreSQL: a finding is recorded as raised only after its
alert was sent, so a failed send is repeated with the same alert id, and then never again."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from services.tasks.findings import FindingsConfig, run_findings
from shared.contracts.events import Alert
from shared.infrastructure.db import make_async_engine
from shared.infrastructure.settings import Settings
from tests.support.factories import make_annulus, make_scada_tag, make_well


def add_reading(engine: Engine, annulus_id: int, ts: datetime, pressure: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO annulus_measurement (id, annulus_id, timestamp, source, pressure_bar,"
                " quality) VALUES (:id, :a, :ts, 'test', :p, 'good')"
            ),
            {"id": uuid.uuid4(), "a": annulus_id, "ts": ts, "p": pressure},
        )


async def test_data_stale_is_raised_once_even_when_the_first_send_fails(
    settings: Settings, db_engine: Engine
) -> None:
    well = make_well(db_engine, f"F-{uuid.uuid4().hex[:8]}", data_stale_after_s=60)
    annulus = make_annulus(db_engine, well, "A", critical_points=[("wellhead", 0.0, 345.0)])
    make_scada_tag(db_engine, f"F/{uuid.uuid4().hex[:8]}/PT", annulus)
    add_reading(db_engine, annulus, datetime.now(UTC) - timedelta(hours=2), 30.0)
    engine = make_async_engine(settings, pool_size=2)
    cfg = FindingsConfig()
    attempts: list[list[Alert]] = []

    async def broker_away(alerts: Sequence[Alert]) -> None:
        attempts.append([a for a in alerts if a.well_id == well])
        raise ConnectionError("broker away")

    sent: list[Alert] = []

    async def broker(alerts: Sequence[Alert]) -> None:
        sent.extend(a for a in alerts if a.well_id == well)

    try:
        with pytest.raises(ConnectionError):
            await run_findings(engine, cfg, broker_away)
        await run_findings(engine, cfg, broker)
        assert [a.kind for a in sent] == ["data_stale"]
        assert [a.event_id for a in attempts[0]] == [sent[0].event_id]  # the same alert again
        assert sent[0].annulus_id == annulus and "data stale" in sent[0].message

        await run_findings(engine, cfg, broker)
        assert len(sent) == 1, "a raised finding is not raised again"

        add_reading(db_engine, annulus, datetime.now(UTC), 31.0)
        await run_findings(engine, cfg, broker)
        await run_findings(engine, cfg, broker)
        assert [a.kind for a in sent] == ["data_stale", "data_stale_cleared"]
    finally:
        await engine.dispose()
