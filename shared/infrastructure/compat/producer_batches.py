"""aiokafka's producer: queue a whole record batch without its early time-out
(``add-batch-early-timeout`` in ``shared.infrastructure.compat``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from shared.infrastructure.compat import plain_path_warning


class Deadline(Protocol):
    def left(self) -> float: ...  # seconds still to wait (> 0)

    def passed(self) -> bool: ...


class At:
    """A fixed deadline at ``time.monotonic()`` value ``at``."""

    def __init__(self, at: float) -> None:
        self.at = at

    def left(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at


async def send_batch_until(
    producer: AIOKafkaProducer, builder: Any, topic: str, partition: int, deadline: Deadline
) -> Any:
    """Queue one record batch for a partition, waiting for room until ``deadline``;
    returns the future of its ack.

    aiokafka's ``add_batch`` subtracts the *total* time waited so far on every wake-up, so
    when several pushes wait for the same partition it gives up (KafkaTimeoutError) long
    before its timeout, and the push would be refused (503) although Kafka is healthy. It
    raises (or is cancelled) before it appends the builder, so trying again with the same
    builder is safe; each try is bounded by the push's own deadline. On an aiokafka it was
    not verified for, one try: a spurious 503 is possible, a lost reading is not."""
    retry = plain_path_warning("add-batch-early-timeout")
    while True:
        try:
            return await asyncio.wait_for(
                producer.send_batch(builder, topic, partition=partition), deadline.left()
            )
        except KafkaTimeoutError:
            if not retry or deadline.passed():
                raise
