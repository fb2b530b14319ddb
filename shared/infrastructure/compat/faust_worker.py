"""The faust-streaming workarounds every WIMS worker runs with (see ``shared.infrastructure.compat``).

1. **Input held until the worker is ready** (``hold-input-during-rebalance``): faust
   resumes the input partitions, then seeks them to the committed offsets, then tells its
   streams to flow. A fetch in that window hands the streams records that are dropped
   unprocessed, and aiokafka has moved past them; and while recovery swaps changelog for
   input partitions faust's set of active partitions can be empty, which aiokafka reads as
   "every partition". Found by the integrity worker's restart tests: a restarted worker
   never processed the alert published while it started. Input records now stay in
   aiokafka's buffer, its position untouched, until the rebalance is over *and* the
   producer knows every changelog topic (2.); the seek then takes them from the committed
   offsets as faust intends.

2. **The producer knows every changelog** (``producer-knows-changelogs``): a table write
   picks its changelog partition from the producer's metadata without waiting for it and
   failed with ``TypeError: 'NoneType' object is not iterable`` when the producer had not
   yet fetched the changelog topic faust had just created. Seen by a new user: the MAASP
   worker dead-lettered every annulus config of its first minutes. Now (a) on every
   assignment the producer is made to learn every table's changelog partitions
   (:func:`learn_changelog_partitions`) before any input flows to an agent or to a pump
   that waits for :func:`producer_ready`, and (b) should a later metadata refresh lose a
   topic, the table write raises :class:`TopicPartitionsUnknown`, a transient error: the
   message is retried (``shared.infrastructure.retry``) once the refresh it started has answered, never
   skipped.

3. **Durable table writes** (``durable-table-writes``): :func:`put_durably` writes table
   values and sends their changelog records straight through the producer, waiting for the
   acks, so a state is durable before the offsets that depend on it are committed;
   :func:`send_raw` hands one record to the producer bypassing faust's topic layer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from shared.infrastructure.compat import FAUST, require_verified
from shared.infrastructure.retry import TransientError, retry_transient

log = logging.getLogger(__name__)

_READY = "_wims_producer_knows_changelogs"


class TopicPartitionsUnknown(TransientError):
    """The producer's metadata does not list this topic (yet, or any more)."""


def producer_ready(app: Any) -> bool:
    """True once the producer knows every table changelog of ``app`` (see 2.)."""
    return bool(getattr(app, _READY, False))


class FetchablePartitions(AbstractSet[Any]):
    """What aiokafka may hand faust from its fetch buffer: faust's live set of active
    partitions, less the input partitions while a rebalance is in progress or the producer
    does not know every changelog yet (the table changelogs being recovered stay in), and
    truthy even when empty, because aiokafka takes an empty set to mean every partition."""

    def __init__(self, live: AbstractSet[Any], app: Any) -> None:
        self._live = live
        self._app = app

    def __contains__(self, tp: object) -> bool:
        if tp not in self._live:
            return False
        app = self._app
        if not app.rebalancing and producer_ready(app):
            return True
        return getattr(tp, "topic", None) in app.tables.changelog_topics

    def __iter__(self) -> Iterator[Any]:
        return (tp for tp in list(self._live) if tp in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return True


def install() -> None:
    """Patch faust's aiokafka driver (idempotent); refuses an unverified faust version."""
    require_verified(FAUST)
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

    getmany = AIOKafkaConsumerThread.getmany
    if not getattr(getmany, "_wims_patched", False):
        # faust passes both arguments by position; ``timeout`` is faust's own name for it.
        async def getmany_when_ready(self: Any, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
            if active_partitions is not None:
                active_partitions = FetchablePartitions(active_partitions, self.app)
            return await getmany(self, active_partitions, timeout)

        getmany_when_ready._wims_patched = True  # type: ignore[attr-defined]
        AIOKafkaConsumerThread.getmany = getmany_when_ready  # type: ignore[method-assign]

    key_partition = Producer.key_partition
    if not getattr(key_partition, "_wims_patched", False):

        def key_partition_when_known(self: Any, topic: str, key: bytes) -> Any:
            producer = self._ensure_producer()
            if producer._metadata.partitions_for_topic(topic) is None:
                client = producer.client
                # Ask now, so that the retry finds the answer.
                if topic in client._topics:
                    client.force_metadata_update()
                else:
                    client.add_topic(topic)
                raise TopicPartitionsUnknown(
                    f"the producer does not know the partitions of {topic} yet"
                )
            return key_partition(self, topic, key)

        key_partition_when_known._wims_patched = True  # type: ignore[attr-defined]
        Producer.key_partition = key_partition_when_known  # type: ignore[method-assign]


def changelog_topics(app: Any) -> list[str]:
    return sorted(table.changelog_topic.get_topic_name() for table in app.tables.values())


async def learn_changelog_partitions(app: Any, service: str) -> None:
    """Make the producer know every changelog topic's partitions; input flows after that.

    Run on every assignment (a rebalance may follow a broker restart that lost topics from
    the metadata); cheap when the topics are known. Waits out a broker that is away."""
    setattr(app, _READY, False)
    producer = app.producer._ensure_producer()  # aiokafka's, started with faust's producer
    names = changelog_topics(app)
    for name in names:
        await retry_transient(service, "learn changelog partitions", producer.partitions_for, name)
    setattr(app, _READY, True)
    if names:
        log.info("%s: the producer knows the partitions of %s", service, ", ".join(names))


async def send_raw(app: Any, topic: str, key: bytes | None, value: bytes | None) -> asyncio.Future:
    """Hand one record to faust's producer now; await the returned future for the ack.

    Straight to the transport's producer, neither attached to the offset commit (faust's
    default in an agent) nor through faust's topic layer, which costs more per record than
    the MAASP worker's judging itself."""
    return await app.producer.send(topic, key, value, None, None, None)


async def put_durably(
    table: Any, items: Iterable[tuple[Any, Any, bytes | None, bytes | None]]
) -> None:
    """Store values in a faust table and its changelog, and wait for the acks.

    ``items``: (table key, table value, changelog key bytes, changelog value bytes); bytes
    given as None are made by the table's own serializers (the MAASP worker passes its
    own, faster encoding of the same JSON). The key bytes hash to the partition of the
    entity's events, as ``use_partitioner`` does, so a write needs no current event."""
    app = table.app
    store = table.data
    changelog = table.changelog_topic.get_topic_name()
    serializers = app.serializers
    futures = []
    for key, value, key_bytes, value_bytes in items:
        if key_bytes is None:
            key_bytes = serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
        if value_bytes is None:
            value_bytes = serializers.dumps_value(
                table.value_type, value, serializer=table.value_serializer
            )
        store[key] = value
        futures.append(await send_raw(app, changelog, key_bytes, value_bytes))
    if futures:
        await asyncio.gather(*futures)


def settling(app: Any) -> bool:
    """True while the worker's tables are not to be trusted or written: a rebalance or a
    recovery is under way, or the producer does not know every changelog yet."""
    return bool(app.rebalancing or getattr(app, "in_recovery", False) or not producer_ready(app))


def active_partitions(app: Any, topic: str) -> set[int]:
    """Partitions of ``topic`` this worker actively owns (faust's assignor), standby
    replicas of other workers' partitions excluded."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def peek(table: Any, key: Any) -> Any:
    """A table value read outside an agent (a timer): faust's own read path would look
    for a current event to attribute the read to."""
    return table.data.get(key)
