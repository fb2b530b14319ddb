"""What the integrity worker does with each message and on each timer tick: fold the event
into the well's state (services.integrity.core), evaluate the well, write the snapshot
(services.integrity.store), publish the snapshot and any colour alert, then update the
table, in the order described in services.integrity.worker. The worker's wiring (table,
agent, timers) is in services.integrity.worker, the SQL in services.integrity.store."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import faust
from pydantic import ValidationError

from services.integrity import metrics
from services.integrity.core import (
    FoldError,
    Outcome,
    State,
    apply_event,
    decide,
    event_well_id,
    wake_at,
    well_inputs,
)
from services.integrity.store import insert_snapshot, read_risk_matrix_cells
from shared.contracts import topics
from shared.contracts.dead_letters import decode_failure_reason
from shared.contracts.enums import IntegrityStatus
from shared.contracts.events import decode, utcnow
from shared.contracts.topics import entity_key
from shared.domain.alarms import AlarmPolicy
from shared.domain.integrity import evaluate_well
from shared.domain.risk import DEFAULT_RISK_MATRIX, RiskMatrix
from shared.infrastructure.compat.faust_worker import active_partitions, peek, put_durably, settling
from shared.infrastructure.faust_app import (
    Rejected,
    WorkerContext,
    describe,
    process_message,
)
from shared.infrastructure.retry import retry_transient

log = logging.getLogger(__name__)


class IntegrityWorker:
    """The service shell around the pure fold: table, risk matrix cache, database, topics."""

    def __init__(self, app: faust.App, ctx: WorkerContext, table: Any) -> None:
        self.app = app
        self.ctx = ctx
        self.table = table
        self.snapshots_topic = app.topic(
            topics.INTEGRITY_SNAPSHOTS.name, key_serializer="raw", value_serializer="raw"
        )
        self.alerts_topic = app.topic(
            topics.ALERTS.name, key_serializer="raw", value_serializer="raw"
        )
        # The agent and the timer both read-modify-write well states; one lock keeps an
        # evaluation from interleaving with another on the same well.
        self.lock = asyncio.Lock()
        self._matrix: RiskMatrix = DEFAULT_RISK_MATRIX
        self._matrix_loaded_at: float | None = None
        self.alarm_policy = AlarmPolicy(
            persist=timedelta(seconds=ctx.settings.colour_persist_s),
            settling=timedelta(seconds=ctx.settings.config_settling_s),
        )

    # ------------------------------------------------------------------ risk matrix

    async def risk_matrix(self) -> RiskMatrix:
        refresh = self.ctx.settings.integrity_risk_matrix_refresh_seconds
        now = time.monotonic()
        if self._matrix_loaded_at is not None and now - self._matrix_loaded_at < refresh:
            return self._matrix
        try:
            rows = await read_risk_matrix_cells(self.ctx.engine)
            self._matrix = RiskMatrix.from_cells((p, c, cat) for p, c, cat in rows)
        except ValueError as exc:
            # An incomplete matrix is a configuration error the operator must see; risk
            # still needs a category, so the published default banding stands in.
            log.error("risk_matrix_cell is not a complete 5x5 matrix (%s); using default", exc)
            self._matrix = DEFAULT_RISK_MATRIX
        except Exception as exc:
            # Database unreachable: keep the last matrix and try again on the next use.
            log.warning("risk matrix not refreshed: %r", exc)
            return self._matrix
        self._matrix_loaded_at = now
        return self._matrix

    # ------------------------------------------------------------------ the agent

    async def handle(self, event: Any) -> None:
        """Fold one input message. A transient failure is retried with the offset held; a
        message that breaks its contract is dead-lettered (shared.infrastructure.faust_app)."""
        message = event.message
        reason = await process_message(self.app, "integrity", message, self._fold, event)
        if reason is None:
            metrics.EVENTS_PROCESSED.labels(topic=message.topic).inc()
        else:
            metrics.EVENTS_FAILED.labels(topic=message.topic, reason=reason).inc()

    async def _fold(self, event: Any) -> None:
        message = event.message
        topic = message.topic
        try:
            if event.value is None and topic == topics.WELL_CONFIG.name:
                # A tombstone on the compacted config topic: the well is gone.
                decoded, well_id = None, _key_well_id(event.key)
            else:
                decoded = decode(topic, event.value)
                well_id = event_well_id(decoded)
                _check_key(event.key, well_id)
        except (ValidationError, FoldError, ValueError) as exc:
            error = describe(exc)
            raise Rejected(decode_failure_reason(error), error) from exc
        async with self.lock:
            state = self.table.get(well_id)
            try:
                new = None if decoded is None else apply_event(state, decoded, message.partition)
            except FoldError as exc:
                raise Rejected("invalid", describe(exc)) from exc
            if new is None:
                if state is not None:
                    del self.table[well_id]
                    self._count_colour(state, None)
                return
            outcome = await self._evaluate(new, str(decoded.event_id))
            if outcome is not None:
                await self._write(outcome)
                new = outcome.state
            if new != state:
                # A write the producer cannot place yet raises a transient error: the
                # whole fold is retried, and each of its effects is idempotent.
                self.table[well_id] = new
            if outcome is not None:
                self._count_colour(state, outcome.state)

    async def _evaluate(self, state: State, cause: str) -> Outcome | None:
        inputs = well_inputs(state)
        if inputs is None:
            return None
        now = utcnow()
        assessment = evaluate_well(inputs, now, await self.risk_matrix())
        return decide(state, assessment, cause, now, self.alarm_policy)

    async def _write(self, outcome: Outcome) -> None:
        snapshot = outcome.snapshot
        key = entity_key(outcome.state["well_id"])
        if snapshot is not None:
            inserted = await retry_transient("integrity", "write snapshot", self._insert, outcome)
            if inserted:
                metrics.SNAPSHOTS_WRITTEN.labels(status=snapshot.overall_status.value).inc()
            log.info(
                "well %s: %s -> %s (risk %s %s)%s",
                snapshot.well_id,
                snapshot.previous_status.value if snapshot.previous_status else "new",
                snapshot.overall_status.value,
                snapshot.risk_score,
                snapshot.risk_category.value,
                "" if inserted else ", already stored (replay)",
            )
            # Wait for delivery: the table must not record this fingerprint before the
            # snapshot (and its alert) are on the broker, or a crash would lose them.
            await (await self.snapshots_topic.send(key=key, value=snapshot.encode()))
        alert = outcome.alert
        if alert is not None:
            await (await self.alerts_topic.send(key=key, value=alert.encode()))
            metrics.STATUS_ALERTS.labels(status=alert.status.value if alert.status else "").inc()
            log.info("well %s: alerted %s", alert.well_id, alert.message)

    async def _insert(self, outcome: Outcome) -> bool:
        s = outcome.snapshot
        assert s is not None
        return await insert_snapshot(self.ctx.engine, s)

    # ------------------------------------------------------------------ the timer

    def owned_partitions(self) -> set[int]:
        """Partitions this worker actively owns. Standby replicas of other workers'
        partitions may sit in the same table store and must not be assessed here."""
        return active_partitions(self.app, topics.WELL_CONFIG.name)

    async def reevaluate_all(self, due_only: bool = False) -> int:
        """Re-evaluate every owned well (or, ``due_only``, those whose alarm asked for a
        look by now); returns the number of outcomes written."""
        if settling(self.app):
            return 0  # the table is being rebuilt; the next tick sees it whole
        started = time.perf_counter()
        owned = self.owned_partitions()
        emitted = 0
        colours = dict.fromkeys(IntegrityStatus, 0)
        now = utcnow()
        for well_id in list(self.table.keys()):
            if settling(self.app):  # a rebalance or a stop began meanwhile
                return emitted
            if due_only:
                state = peek(self.table, well_id)
                due = None if state is None else wake_at(state)
                if due is None or due > now:
                    continue  # cheap check outside the lock: most wells want nothing
            async with self.lock:
                state = peek(self.table, well_id)
                if state is None or state["partition"] not in owned:
                    continue
                try:
                    last = state.get("last")
                    cause = f"reevaluate:{last['event_id'] if last else 'none'}"
                    outcome = await self._evaluate(state, cause)
                    if outcome is not None:
                        await self._write(outcome)
                        # Outside an agent there is no current event: the key's bytes
                        # place the changelog record (use_partitioner), as the agent does.
                        await put_durably(self.table, [(well_id, outcome.state, None, None)])
                        state = outcome.state
                        emitted += 1
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("re-evaluation of well %s failed; retried next tick", well_id)
                if state.get("last"):
                    colours[IntegrityStatus(state["last"]["status"])] += 1
        if due_only:
            return emitted  # a partial pass: the colour gauges stay as the full pass set them
        for colour, count in colours.items():
            metrics.WELLS.labels(status=colour.value).set(count)
        metrics.REEVALUATION_SECONDS.observe(time.perf_counter() - started)
        return emitted

    def _count_colour(self, before: State | None, after: State | None) -> None:
        was = (before or {}).get("last") or {}
        now = (after or {}).get("last") or {}
        if was.get("status") == now.get("status"):
            return
        if was.get("status"):
            metrics.WELLS.labels(status=was["status"]).dec()
        if now.get("status"):
            metrics.WELLS.labels(status=now["status"]).inc()


def _key_well_id(key: bytes | None) -> int:
    try:
        return int(key)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FoldError(f"key: {key!r} is not a well id") from None


def _check_key(key: bytes | None, well_id: int) -> None:
    # The key decides the partition and so which table partition holds the well: an event
    # filed under another well's key would be folded where the well's state is not.
    if key is None:
        return
    key_id = _key_well_id(key)
    if key_id != well_id:
        raise FoldError(f"key: {key_id} does not match well_id {well_id}")
