"""shared.infrastructure.retry: the one definition of a transient failure, and the retry that waits it out
with the message held instead of skipping or dead-lettering a valid message."""

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from shared.infrastructure.compat.faust_worker import TopicPartitionsUnknown
from shared.infrastructure.retry import Backoff, is_transient, retry_transient


def _db(cls: type) -> Exception:
    return cls("INSERT ...", {}, Exception("server said so"))


@pytest.mark.parametrize(
    "exc",
    [
        _db(OperationalError),  # the database restarting or unreachable
        KafkaConnectionError(),
        KafkaTimeoutError(),
        UnknownTopicOrPartitionError(),  # a topic being created
        TopicPartitionsUnknown("changelog"),  # the first-minutes defect
        ConnectionResetError(),
        TimeoutError(),
    ],
)
def test_infrastructure_failures_are_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        _db(IntegrityError),  # a constraint says no: the same answer every time
        _db(DataError),
        MessageSizeTooLargeError(),
        TypeError("'NoneType' object is not iterable"),
        ValueError("pressure_bar: must be finite"),
    ],
)
def test_refusals_and_bugs_are_permanent(exc: Exception) -> None:
    assert not is_transient(exc)


async def test_retry_waits_out_a_transient_failure_and_raises_a_permanent_one() -> None:
    calls = []

    async def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise KafkaConnectionError()
        return x * 2

    assert await retry_transient("test", "flaky", flaky, 21) == 42
    assert calls == [21, 21, 21]

    async def refused() -> None:
        calls.append(0)
        raise _db(IntegrityError)

    calls.clear()
    with pytest.raises(IntegrityError):
        await retry_transient("test", "refused", refused)
    assert calls == [0]  # tried once: retrying cannot change the answer


async def test_a_cancelled_retry_stops_at_once() -> None:
    async def down() -> None:
        raise KafkaConnectionError()

    task = asyncio.ensure_future(retry_transient("test", "down", down))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_doubles_to_its_ceiling_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_a_faust_send_error_is_as_transient_as_the_kafka_error_it_wraps() -> None:
    from aiokafka.errors import KafkaTimeoutError, UnsupportedVersionError
    from faust.exceptions import ProducerSendError

    def wrapped(cause: Exception | None) -> ProducerSendError:
        try:
            try:
                if cause is not None:
                    raise cause
                raise ProducerSendError("no transactional producer")
            except Exception as exc:
                if isinstance(exc, ProducerSendError):
                    raise
                raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        except ProducerSendError as err:
            return err

    assert is_transient(wrapped(KafkaTimeoutError()))
    assert not is_transient(wrapped(UnsupportedVersionError()))
    assert not is_transient(wrapped(None))
