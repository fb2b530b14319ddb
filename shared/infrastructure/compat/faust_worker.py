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

4. **Input only with its tables' partitions** (``input-with-its-tables``): every WIMS
   table is co-partitioned with its worker's input (keyed by the same entity id), and the
   workers read an entity's state from the table partition with the same number as the
   input partition. faust's assignor only keeps those together when every member
   subscribes the same topics and the leader's metadata lists every one of them: a topic
   missing from the leader's view is assigned to no one in that generation ("Ignoring
   missing topic"), and topics subscribed by different members form separate groups,
   each spread on its own. A worker then owned input partitions whose table partitions
   it had not recovered: in the scale test a MAASP worker judged an annulus mid-episode
   with no runtime state ("from_level: unknown") and raised its exceedance twice. Now
   :func:`learn_changelog_partitions` notes, on every assignment, the partitions whose
   every table changelog partition is this worker's (:func:`state_partitions`); input of
   any other partition is held in aiokafka's buffer like input during a rebalance, the
   MAASP pump and the integrity timers work on those partitions only, and the worker
   refreshes its consumer's metadata at once (a leader that lacked the topic sees it and
   rebalances by itself) and asks the group for a new assignment
   (:func:`request_rebalance`) until it is whole. Seen at a scale test's start: the leader's
   metadata lacked the just-created runtime changelog for three generations.

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
_STATE = "_wims_state_partitions"
_REBALANCE_ASKED = "_wims_rebalance_asked"  # the generation last asked about
_REBALANCE_TASKS = "_wims_rebalance_tasks"
#: Seconds between the assignment that split an input partition from its table partitions
#: (and the metadata refresh it causes at once) and asking the group for another (a
#: rebalance under way by then makes it moot).
REBALANCE_ASK_DELAY_S = 5.0


class TopicPartitionsUnknown(TransientError):
    """The producer's metadata does not list this topic (yet, or any more)."""


def producer_ready(app: Any) -> bool:
    """True once the producer knows every table changelog of ``app`` (see 2.)."""
    return bool(getattr(app, _READY, False))


def state_partitions(app: Any) -> frozenset[int] | None:
    """The partition numbers whose every table changelog partition this worker actively
    owns (recovered from the changelog as noted at the last assignment, see 4.); None when
    the app has no tables (its input needs no state) or no assignment was noted yet."""
    noted = getattr(app, _STATE, None)
    return None if noted is None else noted[0]


def _holds_state_for(app: Any, tp: Any) -> bool:
    noted = getattr(app, _STATE, None)
    if noted is None:
        return True
    partitions, exempt = noted
    return tp.partition in partitions or tp.topic in exempt


class FetchablePartitions(AbstractSet[Any]):
    """What aiokafka may hand faust from its fetch buffer: faust's live set of active
    partitions, less the input partitions while a rebalance is in progress or the producer
    does not know every changelog yet (the table changelogs being recovered stay in), less
    the input partitions whose table partitions are not this worker's (4.), and truthy
    even when empty, because aiokafka takes an empty set to mean every partition."""

    def __init__(self, live: AbstractSet[Any], app: Any) -> None:
        self._live = live
        self._app = app

    def __contains__(self, tp: object) -> bool:
        if tp not in self._live:
            return False
        app = self._app
        if getattr(tp, "topic", None) in app.tables.changelog_topics:
            return True
        return not app.rebalancing and producer_ready(app) and _holds_state_for(app, tp)

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
    """Make the producer know every changelog topic's partitions, and note which input
    partitions come with their tables' partitions (4.); input flows after that.

    Run on every assignment (a rebalance may follow a broker restart that lost topics from
    the metadata); cheap when the topics are known. Waits out a broker that is away."""
    setattr(app, _READY, False)
    note_state_partitions(app, service)
    producer = app.producer._ensure_producer()  # aiokafka's, started with faust's producer
    names = changelog_topics(app)
    for name in names:
        await retry_transient(service, "learn changelog partitions", producer.partitions_for, name)
    setattr(app, _READY, True)
    if names:
        log.info("%s: the producer knows the partitions of %s", service, ", ".join(names))


def note_state_partitions(app: Any, service: str) -> None:
    """Note the partitions this assignment gives together with every table's changelog
    partition of the same number (4.); when it gives an input partition without them, say
    so and ask the group for another assignment."""
    names = changelog_topics(app)
    if not names:
        setattr(app, _STATE, None)
        return
    actives = app.assignor.assigned_actives()
    by_topic: dict[str, set[int]] = {}
    for tp in actives:
        by_topic.setdefault(tp.topic, set()).add(tp.partition)
    with_state = set.intersection(*(by_topic.get(name, set()) for name in names))
    leader_topic = f"{app.conf.id}-__assignor-__leader"  # faust's, not co-partitioned
    setattr(app, _STATE, (frozenset(with_state), frozenset({leader_topic})))
    split = {
        topic: sorted(parts - with_state)
        for topic, parts in sorted(by_topic.items())
        if topic not in names and topic != leader_topic and parts - with_state
    }
    if split:
        missing = {
            name: sorted(set().union(*split.values()) - by_topic.get(name, set())) for name in names
        }
        log.warning(
            "%s: assigned input partitions %s without the same partitions of its tables' "
            "changelogs (not assigned here: %s); their input is held and the group is asked "
            "for another assignment",
            service,
            split,
            {k: v for k, v in missing.items() if v},
        )
        _ask_for_rebalance(app, service)


def _ask_for_rebalance(app: Any, service: str) -> None:
    """Once per generation: refresh the consumer's metadata now (a leader whose metadata
    lacked a topic sees it again and rebalances by itself: aiokafka's leader rejoins when
    its group's topics change), then, should the generation still be this one, ask the
    group to rebalance."""
    generation = app.consumer_generation_id
    if getattr(app, _REBALANCE_ASKED, None) == generation:
        return
    setattr(app, _REBALANCE_ASKED, generation)

    async def ask() -> None:
        try:
            await asyncio.wait_for(request_rebalance(app, rejoin=False), timeout=30.0)
            await asyncio.sleep(REBALANCE_ASK_DELAY_S)
            if app.consumer_generation_id == generation and not app.should_stop:
                await asyncio.wait_for(request_rebalance(app), timeout=30.0)
                log.info("%s: asked the group for another assignment", service)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: asking the group for another assignment failed", service)

    task = asyncio.ensure_future(ask())
    tasks = getattr(app, _REBALANCE_TASKS, None)
    if tasks is None:
        tasks = set()
        setattr(app, _REBALANCE_TASKS, tasks)
    tasks.add(task)  # a strong reference until it is done
    task.add_done_callback(tasks.discard)


async def request_rebalance(app: Any, *, rejoin: bool = True) -> None:
    """Make this worker's faust consumer refresh its metadata and, with ``rejoin``, rejoin
    its group, so the group's leader assigns every partition again (on the consumer's own
    thread)."""
    thread = app.consumer._thread

    async def refresh_and_rejoin() -> None:
        consumer = thread._ensure_consumer()  # aiokafka's AIOKafkaConsumer
        await consumer._client.force_metadata_update()
        if rejoin:
            consumer._coordinator.request_rejoin()

    await thread.call_thread(refresh_and_rejoin)


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
    recovery is under way, the producer does not know every changelog yet, or the worker
    is stopping (faust revokes nothing then; its group may already have moved on)."""
    return bool(
        app.rebalancing
        or getattr(app, "in_recovery", False)
        or not producer_ready(app)
        or getattr(app, "should_stop", False)
    )


def active_partitions(app: Any, topic: str) -> set[int]:
    """Partitions of ``topic`` this worker actively owns (faust's assignor), standby
    replicas of other workers' partitions excluded, and only those that come with the
    same partition of every table changelog (4.): the partitions whose state is here."""
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}
    with_state = state_partitions(app)
    return owned if with_state is None else owned & with_state


def peek(table: Any, key: Any) -> Any:
    """A table value read outside an agent (a timer): faust's own read path would look
    for a current event to attribute the read to."""
    return table.data.get(key)
