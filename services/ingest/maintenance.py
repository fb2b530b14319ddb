"""The ingest service keeps ``annulus_measurement``'s storage in shape: the table is the
sink's, so the processes that run the sink also run its maintenance (partitions ahead,
retention; shared/persistence/measurement_storage.py), once at start and then every
``measurement_maintenance_interval_s``. ``wims maintenance`` runs it once by hand."""

import asyncio
import logging
import time
from datetime import datetime

from services.ingest import store
from services.ingest.errors import describe
from services.ingest.metrics import (
    MAINTENANCE_FAILURES,
    MAINTENANCE_LAST_SUCCESS,
    PARTITIONS_COVERED_UNTIL,
)
from shared.infrastructure.settings import Settings
from shared.persistence.measurement_storage import Report

log = logging.getLogger(__name__)


def run_once(settings: Settings, now: datetime | None = None) -> Report:
    """One maintenance run on a connection of its own (store.py); metrics updated."""
    try:
        report = store.run_maintenance(settings, now)
    except Exception:
        MAINTENANCE_FAILURES.inc()
        raise
    if not report.skipped:
        MAINTENANCE_LAST_SUCCESS.set(time.time())
        if report.covered_until is not None:
            PARTITIONS_COVERED_UNTIL.set(report.covered_until.timestamp())
    return report


async def run_periodically(settings: Settings) -> None:
    while True:
        try:
            await asyncio.to_thread(run_once, settings)
        except Exception as exc:  # the database away: counted, alerted on, tried again later
            log.warning("measurement maintenance failed: %s", describe(exc))
        await asyncio.sleep(settings.measurement_maintenance_interval_s)
