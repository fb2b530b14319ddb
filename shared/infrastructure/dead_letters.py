"""Dead-lettering, counted: the ``wims.dead-letters`` record of a message a consumer gives up
on (its form is the contract in ``shared.contracts.dead_letters``), and the metric that
counts them by service, topic and reason."""

from datetime import UTC, datetime

from prometheus_client import Counter

from shared.contracts import topics
from shared.contracts.dead_letters import REASONS, DeadLetter

DEAD_LETTERS = Counter(
    "wims_dead_letters_total",
    "Messages a service could not process and sent to wims.dead-letters, "
    "by service, source topic and reason (undecodable, invalid, unprocessable)",
    ["service", "topic", "reason"],
)


def dead_letter(
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
) -> tuple[str, bytes, bytes]:
    """Count one dead letter and return (topic, key, value) of its wims.dead-letters record;
    the caller sends it and waits for the ack before it moves past the source offset."""
    if reason not in REASONS:
        raise ValueError(f"reason: {reason!r} is not one of {', '.join(REASONS)}")
    letter = DeadLetter(
        service, topic, partition, offset, key, value, reason, error, datetime.now(UTC)
    )
    DEAD_LETTERS.labels(service, topic, reason).inc()
    return topics.DEAD_LETTERS.name, topic.encode(), letter.encode()
