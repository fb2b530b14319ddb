"""The readings pump's bookkeeping when a batch in flight fails: which offsets are read
again. (Fetching, judging and committing against a broker are the integration tests'.)"""

import asyncio

from aiokafka import TopicPartition

from services.maasp.pump import Fetched, InFlight, ReadingsPump
from shared.contracts.readings import decode_readings

A, B, C = (TopicPartition("wims.readings", p) for p in range(3))


class SeekLog:
    """Stands in for the consumer's position: only what the pump tells it to re-read."""

    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int] = {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


def fetched(first: dict[TopicPartition, int], last: dict[TopicPartition, int]) -> Fetched:
    batch, errors = decode_readings([])
    return Fetched([], batch, errors, first, last)


def pump() -> ReadingsPump:
    return ReadingsPump(app=None, worker=None, settings=None)  # type: ignore[arg-type]


def test_a_failed_batch_and_the_one_fetched_after_it_are_read_again_from_their_start() -> None:
    failed = fetched({A: 100, B: 40}, {A: 199, B: 59})
    after = fetched({A: 200, C: 7}, {A: 260, C: 30})  # C only in the later batch
    consumer = SeekLog()
    pump()._rewind(consumer, failed, after)  # type: ignore[arg-type]
    assert consumer.seeks == {A: 100, B: 40, C: 7}


async def test_settling_a_failed_batch_hands_it_back_and_a_good_one_nothing() -> None:
    p = pump()
    assert await p._settle() is None  # nothing in flight

    async def ok() -> None:
        return None

    p._in_flight = InFlight(fetched({A: 1}, {A: 2}), asyncio.ensure_future(ok()))
    assert await p._settle() is None
    assert p._in_flight is None

    async def broker_down() -> None:
        raise ConnectionError("broker unavailable")

    bad = fetched({A: 3}, {A: 9})
    p._in_flight = InFlight(bad, asyncio.ensure_future(broker_down()))
    assert await p._settle() is bad
    assert p._in_flight is None


def test_a_dead_letter_names_the_partition_and_offset_of_its_record() -> None:
    class Record:
        def __init__(self, offset: int) -> None:
            self.offset, self.value = offset, b"{}"

    # Records taken partition after partition: A's 3, then B's 2, then C's 1.
    records = [Record(o) for o in (10, 11, 12, 40, 41, 7)]
    f = fetched({A: 10, B: 40, C: 7}, {A: 12, B: 41, C: 7})
    f.records, f.spans = records, [(A, 0), (B, 3), (C, 5)]
    origins = [f.origin(i) for i in range(6)]
    assert [(o.partition, o.offset) for o in origins] == [
        (0, 10),
        (0, 11),
        (0, 12),
        (1, 40),
        (1, 41),
        (2, 7),
    ]
    assert {o.topic for o in origins} == {"wims.readings"}
