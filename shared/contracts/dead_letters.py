"""Dead letters: messages a consumer can never process, kept whole for inspection and replay.

A dead letter is for a message that is wrong in itself (it does not decode, or breaks its
event contract), never for a failure of the infrastructure around it: a broker that does
not know a topic yet, a database that restarts, a timeout. Those are retried with the
offset held (``shared.infrastructure.retry``), so nothing valid is ever dead-lettered.

Every dead letter on ``wims.dead-letters`` carries the source record whole (key and value,
base64, so binary survives), where it was (topic, partition, offset), which service gave up
on it, why (``reason``: a short, low-cardinality word) and the error text. Its id is the
source position, so listing and replaying are idempotent: a record dead-lettered twice
(a replayed batch) is one dead letter, and a replay sends the original key and value back
to the original topic, where every consumer already deduplicates by event id.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

#: Why a message was dead-lettered. ``undecodable``: not the bytes of any event
#: (not JSON, wrong encoding, empty). ``invalid``: decodes, but breaks its contract
#: (a missing or out-of-range field, a key that does not match the entity).
#: ``unprocessable``: valid by contract, yet the service's own logic could not apply it
#: (a bug, a corrupt state): the one reason that calls for a fix and then a replay.
REASONS = ("undecodable", "invalid", "unprocessable")


def decode_failure_reason(error: str) -> str:
    """``undecodable`` for an error that says the bytes are no event at all (empty, not
    JSON, not UTF-8), ``invalid`` for one that names a field breaking the contract."""
    lowered = error.lower()
    if "empty" in lowered or "json" in lowered or "utf-8" in lowered:
        return "undecodable"
    return "invalid"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    service: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    error: str
    ts: datetime

    @property
    def id(self) -> str:
        """The source record's position: one record, one dead letter, however often it
        was given up on."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def encode(self) -> bytes:
        raw = None if self.value is None else self.value.decode("utf-8", "backslashreplace")
        return orjson.dumps(
            {
                "id": self.id,
                "service": self.service,
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "reason": self.reason,
                "error": self.error,
                "ts": self.ts.isoformat(),
                "key_b64": _b64(self.key),
                "value_b64": _b64(self.value),
                # For a person reading the topic; replay uses value_b64.
                "raw": raw,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> DeadLetter:
        """Raises ValueError (or KeyError) for a value that is not a dead letter."""
        doc: dict[str, Any] = orjson.loads(data)
        value = _unb64(doc.get("value_b64"))
        if value is None and doc.get("raw") is not None:
            # Written before key_b64/value_b64 existed: the text is the best copy there is.
            value = doc["raw"].encode()
        ts = doc.get("ts")
        return cls(
            service=doc.get("service", "maasp"),
            topic=doc["topic"],
            partition=int(doc["partition"]),
            offset=int(doc["offset"]),
            key=_unb64(doc.get("key_b64")),
            value=value,
            reason=doc.get("reason", "invalid"),
            error=doc.get("error", ""),
            ts=datetime.fromisoformat(ts) if ts else datetime.fromtimestamp(0, UTC),
        )
