"""Kafka plumbing shared by the services: topic creation and a readiness probe."""

import asyncio
import logging

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.settings import Settings
from shared.topics import ALL_TOPICS

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
        self._client: AIOKafkaClient | None = None

    async def ready(self, timeout_s: float = 2.0) -> bool:
        try:
            if self._client is None:
                self._client = AIOKafkaClient(bootstrap_servers=self._bootstrap)
                await asyncio.wait_for(self._client.bootstrap(), timeout_s)
            metadata = await asyncio.wait_for(self._client.fetch_all_metadata(), timeout_s)
            return bool(metadata.brokers())
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.debug("kafka probe failed: %r", exc)
            await self.close()
            return False

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.close()
            except Exception:
                pass
