"""Readings from raw Kafka values straight into numpy arrays.

A pydantic model per reading costs more than everything else the worker does for it, so
the common, well-formed case is read with orjson and a few type checks. Anything the fast
path does not accept goes through the Reading contract in shared.events, which either
accepts it (a coercion the fast path does not do) or says which field is wrong and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
from pydantic import ValidationError

from shared import events as ev
from shared.topics import READINGS

GOOD, UNCERTAIN, BAD = 0, 1, 2
QUALITY_CODES = {"good": GOOD, "uncertain": UNCERTAIN, "bad": BAD}
QUALITY_NAMES = ("good", "uncertain", "bad")
NO_WELL = -1


@dataclass(slots=True)
class ReadingBatch:
    """Decoded readings in arrival order; ``index`` maps each back to its raw message."""

    index: np.ndarray  # intp: position in the batch of raw values
    annulus_id: np.ndarray  # int64
    well_id: np.ndarray  # int64, NO_WELL when the reading does not say
    ts: np.ndarray  # float64 event time, epoch seconds
    pressure: np.ndarray  # float64, NaN when there is no value
    temperature: np.ndarray  # float64, NaN when there is none
    quality: np.ndarray  # int8 GOOD / UNCERTAIN / BAD

    def __len__(self) -> int:
        return int(self.annulus_id.shape[0])


def _epoch(ts: datetime) -> float:
    if ts.tzinfo is None:  # the contract says UTC; a naive stamp is read as UTC
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


def _number(value: object) -> float:
    """A JSON number (not a bool) or None as float; anything else raises."""
    if value is None:
        return math.nan
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError


def error_summary(exc: Exception) -> str:
    """One line naming each bad field and the reason."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err.get("loc", ())) or "message"
            parts.append(f"{loc}: {err.get('msg')}")
        return "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"


def _slow(raw: bytes) -> tuple[int, int, float, float, float, int]:
    """The Reading contract's own validation: raises with the field and the reason."""
    r = ev.decode(READINGS.name, raw)
    for name in ("pressure_bar", "temperature_c"):
        value = getattr(r, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite number, got {value}")
    return (
        r.annulus_id,
        NO_WELL if r.well_id is None else r.well_id,
        _epoch(r.ts),
        math.nan if r.pressure_bar is None else float(r.pressure_bar),
        math.nan if r.temperature_c is None else float(r.temperature_c),
        QUALITY_CODES[r.quality.value],
    )


def decode_readings(values: Sequence[bytes | None]) -> tuple[ReadingBatch, list[tuple[int, str]]]:
    """Decode a batch; returns the readings and (position, error) for each bad message."""
    idx: list[int] = []
    aids: list[int] = []
    wells: list[int] = []
    tss: list[float] = []
    ps: list[float] = []
    temps: list[float] = []
    qs: list[int] = []
    errors: list[tuple[int, str]] = []
    loads = orjson.loads
    fromiso = datetime.fromisoformat
    quality_codes = QUALITY_CODES
    for i, raw in enumerate(values):
        if raw is None:
            errors.append((i, "message: empty value"))
            continue
        try:
            d = loads(raw)
            aid = d["annulus_id"]
            if type(aid) is not int or d.get("event_type", "reading") != "reading":
                raise TypeError
            ts = fromiso(d["ts"])
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            t = ts.timestamp()
            p = _number(d.get("pressure_bar"))
            tc = _number(d.get("temperature_c"))
            q = quality_codes[d.get("quality", "good")]
            well = d.get("well_id")
            if well is None:
                well = NO_WELL
            elif type(well) is not int:
                raise TypeError
            if not d.get("source"):
                raise TypeError
            if math.isinf(p) or math.isinf(tc):
                raise TypeError
        except Exception:
            try:
                aid, well, t, p, tc, q = _slow(raw)
            except Exception as exc:
                errors.append((i, error_summary(exc)))
                continue
        idx.append(i)
        aids.append(aid)
        wells.append(well)
        tss.append(t)
        ps.append(p)
        temps.append(tc)
        qs.append(q)
    batch = ReadingBatch(
        index=np.asarray(idx, dtype=np.intp),
        annulus_id=np.asarray(aids, dtype=np.int64),
        well_id=np.asarray(wells, dtype=np.int64),
        ts=np.asarray(tss, dtype=np.float64),
        pressure=np.asarray(ps, dtype=np.float64),
        temperature=np.asarray(temps, dtype=np.float64),
        quality=np.asarray(qs, dtype=np.int8),
    )
    return batch, errors


def dead_letter_value(
    topic: str, partition: int, offset: int, error: str, raw: bytes | None
) -> bytes:
    """The wims.dead-letters value: where the message was, why it failed, and what it was."""
    text = None if raw is None else raw.decode("utf-8", errors="backslashreplace")
    return orjson.dumps(
        {"topic": topic, "partition": partition, "offset": offset, "error": error, "raw": text}
    )
