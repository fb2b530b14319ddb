"""The integrity stream processor (faust worker).

One agent folds the four well-keyed input topics (well config, barrier events, annulus
state, alerts) into a per-well state in a changelog-backed table, evaluates the well with
the pure domain (shared.domain.integrity) and, only when the assessment's fingerprint
changed, writes a snapshot to integrity_snapshot and publishes it to
wims.integrity-snapshots. Whether a colour change is alerted (``integrity_status_changed``
on wims.alerts) is the alarm's decision (shared.domain.alarms): red at once, other colours
once they have persisted, none while the well is settling, commissioned or not assessed.
The alarm lives in the same table state, so it survives restarts and rebalances.

Two timers: one re-evaluates every well this worker owns, because test due dates pass
without any event; a faster one looks only at wells whose alarm asked for another look
(``wake_at``: a pending colour's persistence or a settling time ran out), so a pending
alert fires though no event arrives for the well.

Order of effects per change, so that a crash at any point loses nothing and doubles
nothing: database insert (ON CONFLICT on the derived event id) -> Kafka delivery -> table
update -> (faust) producer flush and offset commit. A replay after a crash re-evaluates
the same input against the same stored state and derives the same ids.

This module is the wiring only: the table, the agent and the timers. The handling
(IntegrityWorker) is in services.integrity.processing, the SQL in services.integrity.store.
"""

from __future__ import annotations

from typing import Any

import faust

from services.integrity.processing import IntegrityWorker
from shared.contracts import topics
from shared.infrastructure.faust_app import WorkerContext, make_faust_app
from shared.infrastructure.settings import Settings

INPUT_TOPICS: tuple[str, ...] = (
    topics.WELL_CONFIG.name,
    topics.BARRIER_EVENTS.name,
    topics.ANNULUS_STATE.name,
    topics.ALERTS.name,
)
TABLE_NAME = "well-state"


def create_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    app, ctx = make_faust_app("integrity", settings)
    table = app.Table(
        TABLE_NAME,
        default=None,
        partitions=settings.topic_partitions,
        # No key/value type: faust then stores both as JSON (int well id, state dict).
        # The changelog partition comes from the key, as for every WIMS topic: the JSON key
        # (b"17") is the well's entity_key, so it is the partition of the well's events.
        # Without this, faust takes the partition of the event being processed and first
        # checks the source topic against the changelog in the consumer's metadata, which
        # right after a fresh start can list the just-created changelog with 0 partitions:
        # every event then failed with PartitionsMismatch and was skipped until the
        # metadata was refreshed (found by the e2e test: a well that never turned red).
        use_partitioner=True,
    )
    worker = IntegrityWorker(app, ctx, table)
    ctx.extra["integrity"] = worker
    source = app.topic(*INPUT_TOPICS, key_serializer="raw", value_serializer="raw")

    # One agent over the four co-partitioned topics: events of one well arrive on the same
    # partition number of each, so this agent's table partition holds the well's state.
    @app.agent(source, name="integrity-fold")
    async def fold(stream: Any) -> None:
        async for event in stream.events():
            await worker.handle(event)

    @app.timer(settings.integrity_reevaluate_seconds, name="integrity-reevaluate")
    async def reevaluate() -> None:
        await worker.reevaluate_all()

    @app.timer(settings.integrity_alarm_sweep_s, name="integrity-alarm-sweep")
    async def alarm_sweep() -> None:
        await worker.reevaluate_all(due_only=True)

    return app, ctx
