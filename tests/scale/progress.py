"""Watching a scaled-out stack work: who holds which partitions, and how long work waited.

:class:`Progress` samples, every ``interval_s``, readings stored per annulus, alerts
stored, and each consumer group's committed and end offsets per partition. A *pause* is
the longest stretch in a time window during which a counter did not grow although work was
waiting (stored readings and alerts: always, readings keep coming; a partition: its end
offset was past its committed offset). Offsets are committed every few seconds (faust's
commit interval is 2.8 s), so a steady stack shows pauses of about that much too: the
steady phase is reported beside the events for comparison.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from shared.infrastructure.settings import Settings

#: what each stream service consumes as (its group, what to call it)
GROUPS = {
    "maasp": "wims-maasp-readings",  # the readings pump (follows faust's assignment)
    "integrity": "wims-integrity",
    "tasks": "wims-tasks",
    "ingest sink": "wims-ingest-sink",
}
#: the groups whose members are the processes (the readings pump has none of its own)
MEMBER_GROUPS = {"maasp": "wims-maasp", **{k: v for k, v in GROUPS.items() if k != "maasp"}}


async def group_members(settings: Settings, group: str) -> list[int] | None:
    """For each member of ``group`` now, how many ``wims.*`` input partitions it holds;
    None while the group is rebalancing (what the members hold is not settled then)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    held = []
    for response in responses:
        for _err, _gid, state, _ptype, _proto, members, *_ in response.groups:
            if state != "Stable":
                return None
            for _mid, _cid, _host, _meta, assignment in members:
                tps = ConsumerProtocolMemberAssignment.decode(assignment).partitions()
                held.append(sum(1 for tp in tps if tp.topic.startswith("wims.")))
    return sorted(held)


@dataclass
class Counter:
    """One counter over time: (monotonic time, value, work waiting) per sample."""

    samples: list[tuple[float, int, bool]] = field(default_factory=list)

    def pause(self, start: float, end: float) -> float:
        """Longest time within [start, end] without growth while work was waiting."""
        longest, since, last = 0.0, start, None
        for t, value, waiting in self.samples:
            if t > end:
                break
            if last is not None and value > last:
                if t >= start:
                    longest = max(longest, t - since)
                since = max(t, start)
            elif not waiting:
                since = max(t, start)
            last = value
        return max(longest, end - since) if self.samples else 0.0

    def grew_after(self, t0: float) -> bool:
        before = [v for t, v, _ in self.samples if t <= t0]
        after = [v for t, v, _ in self.samples if t > t0]
        return bool(before and after) and after[-1] > before[-1]

    def waiting_at(self, t0: float) -> bool:
        return any(w for t, _, w in self.samples if t >= t0)


@dataclass
class Progress:
    settings: Settings
    source: str
    well_ids: list[int]
    interval_s: float = 0.5
    counters: dict[tuple[str, str], Counter] = field(default_factory=dict)
    running: bool = True

    def _db(self) -> dict[tuple[str, str], int]:
        with psycopg.connect(self.settings.libpq_url) as conn:
            rows = conn.execute(
                "SELECT annulus_id, count(*) FROM annulus_measurement WHERE source = %s"
                " GROUP BY annulus_id",
                (self.source,),
            ).fetchall()
            alerts = conn.execute(
                "SELECT count(*) FROM alert WHERE well_id = ANY(%s)", (self.well_ids,)
            ).fetchone()[0]
        out = {("readings stored", str(a)): n for a, n in rows}
        out[("alerts stored", "all")] = alerts
        return out

    async def run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        ends = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        await ends.start()
        try:
            while self.running:
                t = time.monotonic()
                for key, value in (await asyncio.to_thread(self._db)).items():
                    self.counters.setdefault(key, Counter()).samples.append((t, value, True))
                for name, group in GROUPS.items():
                    committed = await admin.list_consumer_group_offsets(group)
                    tps = [tp for tp in committed if tp.topic.startswith("wims.")]
                    end = await ends.end_offsets(tps) if tps else {}
                    for tp in tps:
                        done = committed[tp].offset
                        key = (name, f"{tp.topic}[{tp.partition}]")
                        sample = (t, done, end[tp] > done)
                        self.counters.setdefault(key, Counter()).samples.append(sample)
                await asyncio.sleep(max(0.0, t + self.interval_s - time.monotonic()))
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
            with contextlib.suppress(Exception):
                await ends.stop()

    def signals(self) -> list[str]:
        return sorted({name for name, _ in self.counters})

    def pause(self, signal: str, start: float, end: float) -> float:
        """The longest pause of any counter of ``signal`` (any annulus, any partition)."""
        return max(
            (c.pause(start, end) for (name, _), c in self.counters.items() if name == signal),
            default=0.0,
        )

    def recovered(self, since: float) -> list[str]:
        """The counters that had work waiting after ``since`` and have not grown since
        then (empty: everything moves again)."""
        return [
            f"{name} {part}"
            for (name, part), c in self.counters.items()
            if c.waiting_at(since) and not c.grew_after(since)
        ]
