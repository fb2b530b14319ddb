"""What the MAASP worker does with each message: a config is evaluated and stored, a batch
of readings is judged (services.maasp.core), its events handed to the producer and, once
they are acknowledged, its runtime states stored. The worker's wiring is in
services.maasp.worker, the bulk readings consumer in services.maasp.pump, the SQL in
services.maasp.store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faust
import numpy as np

from services.maasp import metrics as m
from services.maasp.config import (
    ConfigView,
    annulus_key,
    evaluate_config,
    maasp_result_event,
    view_from_table,
    view_to_table,
)
from services.maasp.core import Emit, JudgeParams, encode_state, judge_annulus, judge_batch
from services.maasp.store import store_result
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.dead_letters import decode_failure_reason
from shared.contracts.enums import UtilisationLevel
from shared.contracts.readings import QUALITY_NAMES, ReadingBatch, error_summary
from shared.domain.utilisation import LEVEL_BY_CODE
from shared.infrastructure.compat.faust_worker import put_durably, send_raw
from shared.infrastructure.faust_app import Rejected, WorkerContext, send_dead_letter

if TYPE_CHECKING:
    from services.maasp.pump import Fetched, Origin

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchTail:
    """A judged batch whose events are with the producer: what :meth:`MaaspWorker.finish`
    still has to wait for, store and count."""

    batch: ReadingBatch
    emits: list[Emit]
    futures: list[asyncio.Future]
    writes: list[tuple[bytes, dict[str, Any]]]
    late: int
    unconfigured: int
    level_counts: list[int]
    started: float


class MaaspWorker:
    """The agents' shared logic, with the tables and topics it works on."""

    def __init__(self, app: faust.App, ctx: WorkerContext, params: JudgeParams) -> None:
        self.app = app
        self.ctx = ctx
        self.params = params
        partitions = ctx.settings.topic_partitions

        def topic(t: topics.Topic) -> Any:
            return app.topic(t.name, partitions=partitions, internal=False)

        self.config_topic = topic(topics.ANNULUS_CONFIG)
        # use_partitioner: a table key goes to the changelog partition its bytes hash to,
        # the same partition the annulus' readings and configs are on, so one table write
        # needs no "current event" (a batch mixes partitions).
        table_kw: dict[str, Any] = dict(
            default=None,
            partitions=partitions,
            key_type=bytes,  # raw key bytes (b"17"); values are JSON (the default)
            use_partitioner=True,
        )
        self.configs = app.Table("annulus-configs", **table_kw)
        self.runtime = app.Table("annulus-runtime", **table_kw)
        self._runtime_changelog = self.runtime.changelog_topic.get_topic_name()
        # Parsed configs, reused while the table still holds the same value object.
        self._view_cache: dict[bytes, tuple[Any, ConfigView]] = {}

    # --- shared plumbing -----------------------------------------------------------------

    async def publish(self, topic: str, key: bytes, value: bytes) -> asyncio.Future:
        """Hand one record to the producer now; await the returned future for the ack
        (we wait for it before writing the state that depends on it)."""
        return await send_raw(self.app, topic, key, value)

    async def write_states(self, writes: list[tuple[bytes, dict[str, Any]]]) -> None:
        """Store runtime states in the table and its changelog, and wait for the acks: a
        batch's offsets are committed only after this returns, so a state is durable
        before the readings it has seen are acknowledged."""
        await put_durably(self.runtime, ((k, st, k, encode_state(st)) for k, st in writes))

    async def dead_letter(self, origin: Origin, reason: str, error: str, raw: bytes | None) -> None:
        m.DEAD_LETTERS.labels(origin.topic).inc()
        await send_dead_letter(
            self.app,
            "maasp",
            origin.topic,
            origin.partition,
            origin.offset,
            origin.key,
            raw,
            reason,
            error,
        )

    def config_view(self, key: bytes) -> ConfigView | None:
        value = self.configs.get(key)
        if value is None:
            return None
        cached = self._view_cache.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        view = view_from_table(value)
        self._view_cache[key] = (value, view)
        return view

    # --- configs -------------------------------------------------------------------------

    async def on_config(self, event: Any) -> None:
        """Apply one wims.annulus-config message (retried whole on a transient failure:
        the history row, the result event and the table write are each idempotent)."""
        raw: bytes | None = event.value
        try:
            if raw is None:
                raise ValueError("message: empty value (a tombstone is not a config)")
            config = ev.decode(topics.ANNULUS_CONFIG.name, raw)
            view = evaluate_config(config)
        except Exception as exc:
            m.CONFIGS.labels("invalid").inc()
            raise Rejected("invalid", error_summary(exc)) from exc
        key = annulus_key(view.annulus_id)
        current = self.configs.get(key)
        if current is not None and view.version <= int(current["version"]):
            # Same version: a replay (its row and result exist). Older: out of order.
            m.CONFIGS.labels("duplicate" if view.version == current["version"] else "stale").inc()
            return
        if not view.deleted:
            await store_result(self.ctx.engine, view)
            fut = await self.publish(
                topics.MAASP_RESULTS.name, key, maasp_result_event(view).encode()
            )
            await fut
        self.configs[key] = view_to_table(view)
        m.CONFIGS.labels("deleted" if view.deleted else "applied").inc()
        log.info(
            "annulus %s config v%s: MAASP %s bar (limiting point %s)%s",
            view.annulus_id,
            view.version,
            view.maasp_bar,
            view.limiting_point_name,
            " deleted" if view.deleted else "",
        )

    # --- readings ------------------------------------------------------------------------

    async def judge_and_send(self, fetched: Fetched) -> BatchTail | None:
        """Judge one batch of wims.readings records (decoded into ``fetched.batch``,
        ``fetched.errors`` the messages that could not be) and hand its events to the
        producer; the returned tail, awaited by :meth:`finish`, waits for their acks and
        stores the states. Nothing to finish (None) when no reading was usable."""
        started = time.perf_counter()
        records, batch = fetched.records, fetched.batch
        for i, error in fetched.errors:
            await self.dead_letter(
                fetched.origin(i), decode_failure_reason(error), error, records[i].value
            )
        n = len(batch)
        m.BATCH_SIZE.observe(len(records))
        if n == 0:
            return None
        order = np.argsort(batch.annulus_id, kind="stable")
        aids = batch.annulus_id[order]
        ts = batch.ts[order]
        pressure = batch.pressure[order]
        temperature = batch.temperature[order]
        quality = batch.quality[order]
        wells = batch.well_id[order]
        bounds = (np.flatnonzero(np.diff(aids)) + 1).tolist()
        starts = [0, *bounds]
        ends = [*bounds, n]

        emits = []
        writes: list[tuple[bytes, dict[str, Any]]] = []
        late = unconfigured = 0
        level_counts = [0, 0, 0, 0]
        aid_list = aids[starts].tolist()
        keys = [annulus_key(aid) for aid in aid_list]
        get_state = self.runtime.get
        try:
            # The whole batch at once (numpy); it judges like judge_annulus per annulus.
            outcomes: list[Any] = judge_batch(
                aid_list,
                np.asarray(starts),
                np.asarray(ends),
                ts,
                pressure,
                temperature,
                quality,
                wells,
                [get_state(k) for k in keys],
                [self.config_view(k) for k in keys],
                self.params,
            )
        except Exception:
            # An annulus whose state or readings judging fails on: judge one by one below,
            # so only that annulus is dead-lettered.
            log.debug("batch judging failed; judging annulus by annulus", exc_info=True)
            outcomes = [None] * len(keys)
        for s, e, aid, key, outcome in zip(starts, ends, aid_list, keys, outcomes, strict=True):
            if outcome is None:
                try:
                    outcome = judge_annulus(
                        aid,
                        ts[s:e],
                        pressure[s:e],
                        temperature[s:e],
                        quality[s:e],
                        wells[s:e],
                        get_state(key),
                        self.config_view(key),
                        self.params,
                    )
                except Exception as exc:
                    # A bug or a corrupt state must not stop every other annulus:
                    # dead-letter this annulus' readings of the batch with the reason.
                    log.exception("judging annulus %s failed", aid)
                    error = f"judging failed: {error_summary(exc)}"
                    for j in order[s:e].tolist():
                        i = int(batch.index[j])
                        await self.dead_letter(
                            fetched.origin(i), "unprocessable", error, records[i].value
                        )
                    continue
            late += outcome.late
            unconfigured += outcome.unconfigured
            if outcome.level_counts is not None:
                level_counts = [
                    a + b for a, b in zip(level_counts, outcome.level_counts, strict=True)
                ]
            emits.extend(outcome.emits)
            if outcome.late < e - s:  # only late readings: the state did not change
                writes.append((key, outcome.state))

        futures = [await self.publish(x.topic, x.key, x.value) for x in emits]
        return BatchTail(batch, emits, futures, writes, late, unconfigured, level_counts, started)

    async def finish(self, tail: BatchTail) -> None:
        """Wait for a batch's events to be acknowledged, then store its runtime states
        (and wait for those acks): a state never gets ahead of the events it caused."""
        if tail.futures:
            await asyncio.gather(*tail.futures)
        await self.write_states(tail.writes)
        # Counted once judged, emitted and stored: the counter says what is done.
        for code, count in enumerate(np.bincount(tail.batch.quality, minlength=3).tolist()):
            if count:
                m.READINGS.labels(QUALITY_NAMES[code]).inc(count)
        tally = Tally((x.topic, x.label) for x in tail.emits)
        for (topic, label), count in tally.items():
            (m.ALERTS if topic == topics.ALERTS.name else m.STATES).labels(label).inc(count)
        if tail.late:
            m.READINGS_LATE.inc(tail.late)
        if tail.unconfigured:
            m.READINGS_UNCONFIGURED.inc(tail.unconfigured)
        for code, count in enumerate(tail.level_counts):
            if count:
                m.LEVEL_READINGS.labels(LEVEL_BY_CODE[code].value).inc(count)
        m.LAG.observe(max(0.0, time.time() - float(tail.batch.ts.max())))
        m.BATCH_SECONDS.observe(time.perf_counter() - tail.started)

    def count_levels(self) -> None:
        counts = Tally(v.get("level") for v in list(self.runtime.values()) if v)
        for level in UtilisationLevel:
            m.ANNULI.labels(level.value).set(counts.get(level.value, 0))
