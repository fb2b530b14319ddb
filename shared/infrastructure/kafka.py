"""Kafka plumbing shared by the services: topic creation, a readiness probe, consumer lag."""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Gauge

from shared.contracts.topics import ALL_TOPICS
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Create every catalogue topic that does not exist yet; returns the names created.

    Waits (up to ``timeout_s``) for a broker that is still starting.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            await admin.start()
            break
        except KafkaError as exc:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"Kafka at {settings.kafka_bootstrap} did not answer within {timeout_s:.0f} s"
                ) from exc
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=t.name,
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact" if t.compacted else "delete"},
            )
            for t in ALL_TOPICS
            if t.name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        return [t.name for t in wanted]
    finally:
        await admin.close()


class KafkaProbe:
    """Answers "is the broker reachable now?" cheaply, for /readyz."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._metadata_client: AIOKafkaClient | None = None

    async def ready(self, timeout_s: float = 2.0) -> bool:
        try:
            if self._metadata_client is None:
                self._metadata_client = AIOKafkaClient(bootstrap_servers=self._bootstrap)
                await asyncio.wait_for(self._metadata_client.bootstrap(), timeout_s)
            metadata = await asyncio.wait_for(self._metadata_client.fetch_all_metadata(), timeout_s)
            return bool(metadata.brokers())
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.debug("kafka probe failed: %r", exc)
            await self.close()
            return False

    async def close(self) -> None:
        if self._metadata_client is not None:
            client, self._metadata_client = self._metadata_client, None
            try:
                await client.close()
            except Exception:
                pass


CONSUMER_LAG = Gauge(
    "wims_consumer_lag_records",
    "Records on a partition its consumer group has not committed yet (end offset minus "
    "committed offset), by group, topic and partition; exported by one worker of each "
    "faust group and by every process of the ingest sink's and the API's groups (take the "
    "max by group, topic and partition before summing)",
    ["group", "topic", "partition"],
)
COMMITTED_OFFSET = Gauge(
    "wims_consumer_committed_offset",
    "A consumer group's committed offset on a partition: its rate is how fast the group "
    "consumes, so lag / rate is the lag in seconds",
    ["group", "topic", "partition"],
)


class ConsumerLag:
    """Measures a consumer group's lag from the broker's point of view: what each partition
    holds beyond the group's committed offset. Needs no access to the consumer itself, so
    one number means the same for a faust agent and a hand-assigned pump."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._admin: AIOKafkaAdminClient | None = None
        self._ends: AIOKafkaConsumer | None = None

    async def measure(self, group: str) -> dict[TopicPartition, tuple[int, int]]:
        """Per partition the group has committed on: (lag, committed offset)."""
        if self._admin is None or self._ends is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await self._admin.start()
            self._ends = AIOKafkaConsumer(bootstrap_servers=self._bootstrap)
            await self._ends.start()
        committed = await self._admin.list_consumer_group_offsets(group)
        wims = [tp for tp in committed if tp.topic.startswith("wims.")]
        if not wims:
            return {}
        ends = await self._ends.end_offsets(wims)
        return {tp: (max(0, ends[tp] - committed[tp].offset), committed[tp].offset) for tp in wims}

    async def export(self, groups: list[str]) -> None:
        """Measure each group and set ``wims_consumer_lag_records``; a broker that is away
        leaves the last values and is tried again next time."""
        try:
            for group in groups:
                for tp, (lag, offset) in (await self.measure(group)).items():
                    CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
                    COMMITTED_OFFSET.labels(group, tp.topic, str(tp.partition)).set(offset)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("consumer lag not measured: %s", type(exc).__name__)
            await self.close()

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        ends, self._ends = self._ends, None
        for client in (admin, ends):
            if client is not None:
                with contextlib.suppress(Exception):
                    await (client.close() if client is admin else client.stop())


async def export_lag_periodically(bootstrap: str, groups: list[str], interval_s: float) -> None:
    """For a group whose processes are not faust workers (the ingest sink, the API's alert
    history): every process exports the whole group's lag, as the broker sees it. The
    numbers are the same from each, so dashboards and alert rules take the max per
    partition; a process that stops takes its series with it."""
    lag = ConsumerLag(bootstrap)
    try:
        while True:
            await lag.export(groups)
            await asyncio.sleep(interval_s)
    finally:
        await lag.close()
