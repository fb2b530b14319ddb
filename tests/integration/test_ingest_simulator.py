"""The SCADA simulator drives the real ingest service: its readings land, bad points too."""

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import text

from shared.infrastructure.settings import Settings
from tests.support.factories import make_annulus, make_api_key, make_well
from tests.support.stack import Stack, start_service
from tools.simulator import Scenario, load_profiles, push


def test_simulator_pushes_readings_for_the_annuli_in_the_database(
    stack: Stack, settings: Settings, db_engine: Any
) -> None:
    well_id = make_well(db_engine, name=f"SIM-{uuid.uuid4().hex[:6]}")
    aid = make_annulus(db_engine, well_id, "A", critical_points=[("shoe", 1000.0, 250.0)])
    key = make_api_key(db_engine, source="simulator")
    svc = start_service(stack, "ingest")
    try:
        svc.wait_ready()
        profiles = [p for p in load_profiles(settings.libpq_url) if p.annulus_id == aid]
        # MAASP from the critical point: 0.9 x 250 - 0.1 x 1000 = 125 bar.
        assert abs(profiles[0].maasp_bar - 125.0) < 1e-9
        totals = asyncio.run(
            push(
                profiles,
                svc.base_url,
                key,
                rate=400,
                duration_s=3,
                bad_share=0.1,
                scenarios=[Scenario("sap", aid)],
                time_scale=1500,  # 75 event-minutes: past the hour held before the bleed
                batch_size=200,
            )
        )
        assert totals["sent"] >= 1000 and totals["rejected"] == 0
        assert totals["accepted"] == totals["sent"]
        with db_engine.connect() as conn:
            rows = 0
            for _ in range(150):
                rows, bad, low = conn.execute(
                    text(
                        "SELECT count(*), count(*) FILTER (WHERE quality = 'bad'), "
                        "min(pressure_bar) FROM annulus_measurement WHERE annulus_id = :a"
                    ),
                    {"a": aid},
                ).one()
                conn.rollback()
                if rows >= totals["sent"]:
                    break
                time.sleep(0.2)
        assert rows == totals["sent"]
        assert 0 < bad < totals["sent"] * 0.2
        # The SAP scenario bled the annulus down to near zero (2 % of ~30-60 bar).
        assert low < 3.0
    finally:
        svc.terminate()
