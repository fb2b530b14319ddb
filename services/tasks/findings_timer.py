"""The findings sweep as a timer of a faust app (the tasks service's)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import faust

from services.tasks.findings import FindingsConfig, run_findings
from shared.contracts.events import Alert
from shared.contracts.topics import ALERTS, entity_key
from shared.infrastructure.faust_app import WorkerContext
from shared.infrastructure.retry import retry_transient
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)


def register_findings(app: faust.App, ctx: WorkerContext, settings: Settings) -> None:
    cfg = FindingsConfig.from_settings(settings)
    alerts = app.topic(ALERTS.name, key_type=bytes, value_type=bytes)

    async def publish(events: Sequence[Alert]) -> None:
        """Send and wait for every ack: the sweep records a finding as raised only after."""

        async def send() -> None:
            futures = [
                await alerts.send(key=entity_key(a.well_id), value=a.encode(), force=True)
                for a in events
            ]
            await asyncio.gather(*futures)

        await retry_transient("findings", "send alerts", send)

    @app.timer(interval=settings.findings_sweep_seconds, on_leader=True, name="findings.sweep")
    async def sweep() -> None:
        try:
            report = await retry_transient(
                "findings", "sweep", run_findings, ctx.engine, cfg, publish
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            # The next sweep judges everything again; nothing was recorded as raised.
            log.exception("findings: sweep failed")
            return
        if report.raised or report.cleared:
            log.info("%s", report.line())

    ctx.extra["findings"] = cfg
