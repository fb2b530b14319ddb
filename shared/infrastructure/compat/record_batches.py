"""Fetched records taken off an aiokafka consumer a whole record batch at a time.

aiokafka's ``getmany`` hands over every message as a ConsumerRecord, built by a Python
generator and a Python function per message: about 0.7 µs of the 2.7 µs a bare consumer
spends on a reading here (measured by draining the bench topic both ways). The readings
pump needs only each message's offset and value, so :class:`RecordTaker` takes the record
batches out of the consumer's fetch buffer and lists their records in C, as aiokafka's own
record objects (which carry both).

It keeps what ``getmany`` guarantees: the records of a partition that was unassigned,
paused or sought elsewhere since they were fetched are dropped; every batch's CRC is
checked; control batches are skipped; records before the fetch position are left out (a
fetch from the middle of a batch returns the whole batch); the consumer's position moves
past exactly what is handed over (a batch cut by ``max_records`` keeps its rest for the
next call); a partition whose buffer is empty is fetched again; a fetch error is raised
after the records before it are handed over. It reads aiokafka internals, so it is used
only with the aiokafka version it was verified against (``record-batches`` in
``shared.infrastructure.compat``) and with ``read_uncommitted`` (it does not filter aborted
transactions); otherwise ``take`` is ``getmany``. It is meant
for a consumer whose partitions are assigned by hand, as the pump's are: there is no group
rebalance for it to wait out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, FetchResult
from aiokafka.errors import ConsumerStoppedError, CorruptRecordException

from shared.infrastructure.compat import plain_path_warning

log = logging.getLogger(__name__)

#: Attribute on aiokafka's PartitionRecords holding the rest of a record batch cut by
#: ``max_records``: it lives and dies with the buffered fetch it belongs to.
_CARRY = "_wims_carry"


class RecordTaker:
    """``take`` is ``consumer.getmany`` returning records with ``offset`` and ``value``
    only, cheaper per message (see the module docstring); ``bulk`` says which is used."""

    def __init__(self, consumer: AIOKafkaConsumer, *, bulk: bool = True) -> None:
        self._consumer = consumer
        fetcher = consumer._fetcher  # created by consumer.start()
        supported = fetcher is not None and fetcher._isolation_level == READ_UNCOMMITTED
        if bulk and not supported:
            log.warning("taking records with getmany: the batch path is for read_uncommitted")
        self.bulk = bulk and supported and plain_path_warning("record-batches")

    async def take(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        """Up to ``max_records`` buffered records by partition, waiting up to
        ``timeout_ms`` for some to arrive; {} when none did."""
        if max_records < 1:
            raise ValueError(f"max_records: must be at least 1, got {max_records}")
        consumer = self._consumer
        if not self.bulk:
            return await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        if consumer._closed:
            raise ConsumerStoppedError()
        consumer._coordinator.check_errors()
        fetcher = consumer._fetcher
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        with consumer._subscription.fetch_context():
            while True:
                taken = _drain(fetcher, max_records)
                remaining = deadline - loop.time()
                if taken or remaining <= 0:
                    return taken
                waiter = fetcher._create_fetch_waiter()
                done, _ = await asyncio.wait([waiter], timeout=remaining)
                if not done or fetcher._closed:
                    waiter.cancel()
                    return {}
                waiter.result()  # raises what the fetch failed with (e.g. authorisation)


def _drain(fetcher: Any, max_records: int) -> dict[TopicPartition, list[Any]]:
    """What aiokafka's Fetcher.fetched_records does, a record batch at a time."""
    taken: dict[TopicPartition, list[Any]] = {}
    room = max_records
    buffered = fetcher._records
    for tp in list(buffered):
        result = buffered[tp]
        if type(result) is not FetchResult:  # a FetchError
            if taken:
                return taken  # raised by the next call, as getmany does
            del buffered[tp]
            fetcher._notify(fetcher._wait_consume_future)
            result.check_raise()
        if not result.check_assignment(tp):  # unassigned, paused or sought elsewhere
            del buffered[tp]
            fetcher._notify(fetcher._wait_consume_future)
            continue
        records, exhausted = _take_partition(tp, result._partition_records, room, fetcher)
        result._update_position()
        if exhausted:
            result._partition_records = None
            del buffered[tp]
            fetcher._notify(fetcher._wait_consume_future)  # fetch this partition again
        if records:
            taken[tp] = records
            room -= len(records)
            if room <= 0:
                break
    return taken


def _take_partition(
    tp: TopicPartition, partition: Any, room: int, fetcher: Any
) -> tuple[list[Any], bool]:
    """Up to ``room`` records of one partition's buffered fetch, its next fetch offset
    moved past them; and whether the buffer is used up."""
    out: list[Any] = []
    next_offset = partition.next_fetch_offset
    carry = getattr(partition, _CARRY, None)
    if carry is not None:
        rest, after = carry
        out = rest[:room]
        if len(rest) > room:
            setattr(partition, _CARRY, (rest[room:], after))
            partition.next_fetch_offset = rest[room].offset
            return out, False
        setattr(partition, _CARRY, None)
        next_offset = after
    memory = partition._records
    while len(out) < room and memory.has_next():
        batch = memory.next_batch()
        if fetcher._check_crcs and not batch.validate_crc():
            raise CorruptRecordException(f"Invalid CRC - {tp}")
        if getattr(batch, "is_control_batch", False):  # transaction markers: no data
            next_offset = batch.next_offset
            continue
        records = list(batch)
        if records and records[0].offset < next_offset:
            records = [r for r in records if r.offset >= next_offset]
        cut = room - len(out)
        if len(records) > cut:
            out += records[:cut]
            setattr(partition, _CARRY, (records[cut:], batch.next_offset))
            partition.next_fetch_offset = records[cut].offset
            return out, False
        out += records
        next_offset = batch.next_offset
    partition.next_fetch_offset = next_offset
    return out, not memory.has_next()


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Make a consumer fetch the cluster's metadata now (a fresh consumer may not know a
    topic just created); aiokafka has no public call for it."""
    await consumer._client.force_metadata_update()
