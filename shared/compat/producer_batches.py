"""aiokafka's producer: queue a whole record batch without its early time-out
(``add-batch-early-timeout`` in ``shared.compat``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from shared.compat import plain_path_warning


async def send_batch_until(
    producer: AIOKafkaProducer, builder: Any, topic: str, partition: int, deadline: float
) -> Any:
    """Queue one record batch for a partition, waiting for room until ``deadline``
    (``time.monotonic()``); returns the future of its ack.

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
                producer.send_batch(builder, topic, partition=partition),
                max(0.001, deadline - time.monotonic()),
            )
        except KafkaTimeoutError:
            if not retry or time.monotonic() >= deadline:
                raise
