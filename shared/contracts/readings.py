"""The one codec of the ``wims.readings`` wire form, whose schema is :class:`shared.contracts.events.Reading`.

Both directions are hot paths, so neither builds a pydantic model per reading; each is held
to the model by tests (tests/unit/test_reading_codec.py: any reading encodes to the bytes
``Reading(...).encode()`` gives and decodes to the model's values):

- :func:`encode_reading` (the ingest service): the JSON of a validated reading, built by
  orjson from a plain dict of the model's fields in the model's order.
- :func:`decode_readings` (the MAASP worker): raw Kafka values straight into numpy arrays.

Decoding: a pydantic model per reading costs more than everything else the worker does for it, so
the common, well-formed case is parsed by msgspec into a struct of the few fields the
worker reads, their types checked as it parses: about half the cost of a whole-message
``orjson.loads``. Anything that path does not accept goes through the Reading contract in
shared.contracts.events, which either accepts it (a coercion the fast path does not do) or says which
field is wrong and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
import numpy as np
import orjson
from pydantic import ValidationError

from shared.contracts import events as ev
from shared.contracts.topics import READINGS

if TYPE_CHECKING:
    from shared.domain.readings import NormalisedReading

GOOD, UNCERTAIN, BAD = 0, 1, 2
QUALITY_CODES = {"good": GOOD, "uncertain": UNCERTAIN, "bad": BAD}
QUALITY_NAMES = ("good", "uncertain", "bad")
NO_WELL = -1
_dumps = orjson.dumps
_SCHEMA_VERSION = ev.SCHEMA_VERSION


def encode_reading(reading: NormalisedReading, well_id: int | None, received_at: datetime) -> bytes:
    """The ``wims.readings`` value of one reading: the bytes ``Reading(...).encode()`` gives."""
    return _dumps(
        {
            "event_id": reading.reading_id,
            "schema_version": _SCHEMA_VERSION,
            "event_type": "reading",
            "annulus_id": reading.annulus_id,
            "well_id": well_id,
            "ts": reading.ts,
            "pressure_bar": reading.pressure_bar,
            "temperature_c": reading.temperature_c,
            "quality": reading.quality,
            "source": reading.source,
            "received_at": received_at,
        }
    )


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


def concat_batches(parts: Sequence[tuple[ReadingBatch, int]]) -> ReadingBatch:
    """One batch from batches decoded slice by slice; each part comes with the position
    of its first raw value in the whole, which its ``index`` is shifted by."""
    if len(parts) == 1 and parts[0][1] == 0:
        return parts[0][0]
    batches = [b for b, _ in parts]
    return ReadingBatch(
        index=np.concatenate([b.index + offset for b, offset in parts]),
        annulus_id=np.concatenate([b.annulus_id for b in batches]),
        well_id=np.concatenate([b.well_id for b in batches]),
        ts=np.concatenate([b.ts for b in batches]),
        pressure=np.concatenate([b.pressure for b in batches]),
        temperature=np.concatenate([b.temperature for b in batches]),
        quality=np.concatenate([b.quality for b in batches]),
    )


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


class _Wire(msgspec.Struct, gc=False):
    """What the batch path reads of a reading message, types checked by msgspec while it
    parses (fields it does not name are skipped unparsed, the bulk of each message). A
    message without one of them (say an omitted ``well_id``) or with another type takes
    the per-message path, which knows the contract's defaults and coercions."""

    annulus_id: int
    well_id: int | None
    ts: str
    pressure_bar: float | None  # a JSON integer is read as its float, as _number does
    temperature_c: float | None
    quality: Literal["good", "uncertain", "bad"]
    source: Annotated[str, msgspec.Meta(min_length=1)]
    event_type: Literal["reading"]


_WIRE = msgspec.json.Decoder(_Wire)
_WIRE_FIELDS = attrgetter("annulus_id", "well_id", "ts", "pressure_bar", "temperature_c", "quality")


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
#: 2**53 microseconds (about 285 years either side of 1970): below it the int -> float
#: conversion is exact, so ``us / 1e6`` rounds exactly as ``datetime.timestamp()`` does.
_EXACT_US = 2**53


def iso_epochs(stamps: Sequence[str]) -> np.ndarray:
    """Epoch seconds of ISO 8601 stamps, vectorised; NaN where the fast path does not apply.

    Handles ``YYYY-MM-DDTHH:MM:SS`` with no fraction or a 3- or 6-digit one, and no offset
    (read as UTC, as the worker does), ``Z`` or ``+HH:MM``/``-HH:MM``: every layout our
    ingest and the Reading contract write. The value is exactly
    ``datetime.fromisoformat(s).timestamp()`` (naive read as UTC): same integer
    microseconds, then one correctly rounded division, which is what ``timestamp()`` does.
    Anything else (another layout, an invalid date, a non-ASCII character) is NaN, for the
    caller to hand to ``datetime.fromisoformat`` itself.
    """
    n = len(stamps)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    lens = np.fromiter(map(len, stamps), dtype=np.intp, count=n)
    uniform = bool(lens.min() == lens.max())
    for length in np.unique(lens).tolist() if not uniform else [int(lens[0])]:
        layout = _LAYOUTS.get(length)
        if layout is None:
            continue
        if uniform:
            sel = None
            group: Sequence[str] = stamps
        else:
            sel = np.flatnonzero(lens == length)
            group = [stamps[i] for i in sel.tolist()]
        try:
            buf = "".join(group).encode("ascii")
        except UnicodeEncodeError:
            continue
        values = _parse_layout(np.frombuffer(buf, dtype=np.uint8).reshape(-1, length), *layout)
        if sel is None:
            out = values
        else:
            out[sel] = values
    return out


def _parse_layout(a: np.ndarray, frac: int, offset: str) -> np.ndarray:
    """One fixed-width layout: ``frac`` fraction digits; offset "", "Z" or "+" (±HH:MM)."""
    seps = [4, 7, 10, 13, 16]
    want = [45, 45, 84, 58, 58]  # - - T : :
    digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
    pos = 19
    if frac:
        seps.append(19)
        want.append(46)  # .
        digits += list(range(20, 20 + frac))
        pos = 20 + frac
    if offset == "Z":
        seps.append(pos)
        want.append(90)
    elif offset == "+":
        seps.append(pos + 3)
        want.append(58)
        digits += [pos + 1, pos + 2, pos + 4, pos + 5]
    # uint8 arithmetic: a non-digit wraps outside 0..9.
    dd = a[:, digits] - np.uint8(48)
    ok = (a[:, seps] == np.array(want, dtype=np.uint8)).all(axis=1) & (dd <= 9).all(axis=1)
    # Two-digit fields, then four-digit year, as int64 (place values by a matrix product).
    pairs = dd[:, 0:14].reshape(-1, 7, 2).astype(np.int64) @ np.array([10, 1], dtype=np.int64)
    year = pairs[:, 0] * 100 + pairs[:, 1]
    month, day, hour, minute, second = (pairs[:, k] for k in range(2, 7))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (hour <= 23) & (minute <= 59)
    ok &= second <= 59
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    mdays = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (day >= 1) & (day <= mdays)
    seconds = (hour * 60 + minute) * 60 + second
    if frac:
        place = 10 ** np.arange(5, 5 - frac, -1, dtype=np.int64)
        micro = dd[:, 14 : 14 + frac].astype(np.int64) @ place
        seconds = seconds * 1_000_000 + micro
    else:
        seconds = seconds * 1_000_000
    if offset == "+":
        off = dd[:, -4:].reshape(-1, 2, 2).astype(np.int64) @ np.array([10, 1], dtype=np.int64)
        ok &= (off[:, 0] <= 23) & (off[:, 1] <= 59) & ((a[:, pos] == 43) | (a[:, pos] == 45))
        sign = np.where(a[:, pos] == 45, -1, 1)
        seconds = seconds - sign * (off[:, 0] * 3600 + off[:, 1] * 60) * 1_000_000
    us = _days_from_civil(year, month, day) * 86_400_000_000 + seconds
    ok &= np.abs(us) < _EXACT_US
    return np.where(ok, us.astype(np.float64) / 1e6, np.nan)


#: Layouts by length: (fraction digits, offset kind). The lengths are all different.
_LAYOUTS: dict[int, tuple[int, str]] = {
    19 + (frac + 1 if frac else 0) + len(off_text): (frac, off)
    for frac in (0, 3, 6)
    for off, off_text in (("", ""), ("Z", "Z"), ("+", "+00:00"))
}


def _decode_one(raw: bytes | None) -> tuple[int, int, float, float, float, int]:
    """One message: the checked fast read, else the Reading contract. Raises when bad."""
    if raw is None:
        raise _Empty
    try:
        d = orjson.loads(raw)
        aid = d["annulus_id"]
        if type(aid) is not int or d.get("event_type", "reading") != "reading":
            raise TypeError
        ts = datetime.fromisoformat(d["ts"])
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        t = ts.timestamp()
        p = _number(d.get("pressure_bar"))
        tc = _number(d.get("temperature_c"))
        q = QUALITY_CODES[d.get("quality", "good")]
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
        aid, well, t, p, tc, q = _slow(raw)
    # The contract's ints are unbounded; the arrays' are not (such a message used to fail
    # its whole batch, again and again).
    for name, value in (("annulus_id", aid), ("well_id", well)):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{name}: out of range, got {value}")
    return aid, well, t, p, tc, q


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Empty(Exception):
    pass


def decode_readings(values: Sequence[bytes | None]) -> tuple[ReadingBatch, list[tuple[int, str]]]:
    """Decode a batch; returns the readings and (position, error) for each bad message.

    The batch path parses each message into a :class:`_Wire` (types checked by msgspec),
    then converts every field for the whole batch at once (quality codes, timestamps with
    :func:`iso_epochs`). A message that any of that does not accept goes
    alone through :func:`_decode_one`, the per-message path: the same checks one by one,
    then the Reading contract. So every message is read exactly as the per-message path
    alone would read it, only most of them faster.
    """
    wire = _WIRE.decode
    rows: list[_Wire]
    pos: list[int]
    rest: list[int] = []
    try:
        # Every message at once, the loop in C; the usual case.
        rows = list(map(wire, values))  # type: ignore[arg-type]
        pos = list(range(len(rows)))
    except (msgspec.DecodeError, TypeError):
        # One of them is not a reading the batch path takes: find which, one by one.
        rows, pos = [], []
        for i, raw in enumerate(values):
            try:
                rows.append(wire(raw))  # type: ignore[arg-type]
            except (msgspec.DecodeError, TypeError):
                rest.append(i)
            else:
                pos.append(i)
    fast = _decode_rows(rows) if rows else None
    if fast is None and rows:  # an integer beyond int64: one by one
        rest = sorted(rest + pos)
        pos = []
    elif fast is not None and fast[1]:  # some rows need the per-message path
        keep = np.ones(len(pos), dtype=bool)
        keep[fast[1]] = False
        rest = sorted(rest + [pos[j] for j in fast[1]])
        pos = [p for p, k in zip(pos, keep.tolist(), strict=True) if k]
        fast = (tuple(col[keep] for col in fast[0]), [])
    errors: list[tuple[int, str]] = []
    slow_idx: list[int] = []
    slow_rows: list[tuple[int, int, float, float, float, int]] = []
    for i in rest:
        raw = values[i]
        try:
            slow_rows.append(_decode_one(raw))
        except _Empty:
            errors.append((i, "message: empty value"))
        except Exception as exc:
            errors.append((i, error_summary(exc)))
        else:
            slow_idx.append(i)
    if slow_idx:
        aids, wells, tss, ps, temps, qs = (list(c) for c in zip(*slow_rows, strict=True))
        cols_slow = (
            np.asarray(aids, dtype=np.int64),
            np.asarray(wells, dtype=np.int64),
            np.asarray(tss, dtype=np.float64),
            np.asarray(ps, dtype=np.float64),
            np.asarray(temps, dtype=np.float64),
            np.asarray(qs, dtype=np.int8),
        )
    else:
        cols_slow = None
    if fast is not None and pos and cols_slow is not None:
        index = np.concatenate([np.asarray(pos, np.intp), np.asarray(slow_idx, np.intp)])
        order = np.argsort(index, kind="stable")
        cols = tuple(np.concatenate([f, s])[order] for f, s in zip(fast[0], cols_slow, strict=True))
        index = index[order]
    elif fast is not None and pos:
        cols, index = fast[0], np.asarray(pos, dtype=np.intp)
    elif cols_slow is not None:
        cols, index = cols_slow, np.asarray(slow_idx, dtype=np.intp)
    else:
        cols = (
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.float64),
            np.empty(0, np.float64),
            np.empty(0, np.float64),
            np.empty(0, np.int8),
        )
        index = np.empty(0, dtype=np.intp)
    errors.sort()
    batch = ReadingBatch(
        index=index,
        annulus_id=cols[0],
        well_id=cols[1],
        ts=cols[2],
        pressure=cols[3],
        temperature=cols[4],
        quality=cols[5],
    )
    return batch, errors


def _decode_rows(rows: list[_Wire]) -> tuple[tuple[np.ndarray, ...], list[int]] | None:
    """The batch path: columns for all rows, and the rows it leaves to the per-message
    path (an infinite number, a timestamp that does not parse); None when an integer does
    not fit the int64 columns (then all go one by one)."""
    aids, wells, tss, ps, temps, qs = zip(*map(_WIRE_FIELDS, rows), strict=True)
    n = len(rows)
    q = np.fromiter(map(QUALITY_CODES.__getitem__, qs), dtype=np.int8, count=n)
    try:
        aid = np.array(aids, dtype=np.int64)
        well = np.array(
            [NO_WELL if w is None else w for w in wells] if None in wells else wells,
            dtype=np.int64,
        )
    except OverflowError:
        return None
    p = np.array(ps, dtype=np.float64)  # None becomes NaN
    tc = np.array(temps, dtype=np.float64)
    ts = iso_epochs(tss)
    bad = np.isinf(p) | np.isinf(tc)
    missing = np.flatnonzero(np.isnan(ts)).tolist()
    fromiso = datetime.fromisoformat
    for j in missing:  # another layout: what the per-message path does
        try:
            stamp = fromiso(tss[j])
        except ValueError:
            bad[j] = True
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        ts[j] = stamp.timestamp()
    return (aid, well, ts, p, tc, q), np.flatnonzero(bad).tolist()
