"""One definition of a transient failure, and one way to wait it out.

A transient failure is one of the infrastructure, not of the message: the database is
restarting or unreachable, the broker is away, has no leader yet or does not know a topic
yet, a request timed out. Retrying the same work later can succeed, so a consumer retries
it with backoff and holds the message's offset meanwhile: nothing valid is skipped and
nothing is dead-lettered for it. Everything else (a constraint the database refuses, a
value that breaks a contract, a bug) is permanent: retrying cannot change the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from aiokafka.errors import KafkaError
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

RETRIES = Counter(
    "wims_transient_retries_total",
    "Attempts that failed for a transient reason (database, broker, timeout) and were "
    "retried, by service and what was being done",
    ["service", "what"],
)


class TransientError(Exception):
    """Raised by WIMS code for a condition that passes by itself (e.g. the producer does
    not know a topic's partitions yet)."""


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, DBAPIError):
        # Reachability, not a refusal: IntegrityError, DataError, ProgrammingError are
        # answers the database will give again.
        return isinstance(exc, OperationalError | InterfaceError) or bool(
            exc.connection_invalidated
        )
    if type(exc).__name__ == "ProducerSendError" and type(exc).__module__.startswith("faust"):
        # faust's producer wraps whatever aiokafka raised while queueing a record, a
        # retriable error too (metadata not fetched in time, a full batch queue timing
        # out): the wrapped error decides. Taken as permanent, a valid message whose
        # snapshot was already stored was dead-lettered for the broker's sake.
        cause = exc.__cause__
        return cause is not None and is_transient(cause)
    if isinstance(exc, KafkaError):
        # aiokafka marks the errors that a later attempt can get past (connection lost,
        # no leader, unknown topic while it is being created, request timed out).
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ == ("KafkaTimeoutError")
    # psycopg's own errors reach us unwrapped from raw connections.
    if type(exc).__module__.startswith("psycopg") and type(exc).__name__ in (
        "OperationalError",
        "InterfaceError",
    ):
        return True
    return isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError)


class Backoff:
    """Exponential delays between ``first`` and ``most`` seconds; ``reset`` after success."""

    def __init__(self, first: float = 0.2, most: float = 10.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first


async def retry_transient(
    service: str,
    what: str,
    fn: Callable[P, Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run ``fn`` until it succeeds or fails permanently (then its error is raised).

    ``service`` and ``what`` name the attempt in the log and in
    ``wims_transient_retries_total``. There is no attempt limit on purpose: the caller
    holds a message's offset meanwhile, and giving up would mean skipping a valid message.
    Cancellation (a shutdown, a rebalance) stops the waiting at once.
    """
    backoff = Backoff()
    while True:
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.next()
            RETRIES.labels(service, what).inc()
            log.warning(
                "%s: %s failed for a transient reason (%s: %s); retrying in %.1f s",
                service,
                what,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                delay,
            )
            await asyncio.sleep(delay)
