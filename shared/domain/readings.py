"""Validation and normalisation of annulus pressure readings pushed by SCADA historians.

Pure domain code: no I/O, no framework. The ingest service parses JSON / NDJSON / CSV into
plain records (dicts) and hands them here; what comes back is either a
:class:`NormalisedReading` (bar, °C, UTC, a deterministic id) or the list of
:class:`FieldError` explaining why the record was refused.

Wire contract (one reading)::

    {"annulus_id": 17, "timestamp": "2026-11-25T10:00:00Z", "pressure": 1450.3,
     "pressure_unit": "psi", "temperature": 61.2, "temperature_unit": "degC",
     "quality": "good"}

``"tag": "W12/ANN-A/PT"`` may stand instead of ``annulus_id``. Only the annulus,
``timestamp`` and ``pressure`` are required; units default to bar and degC, quality to
good. Fields not listed here are ignored. ``None`` and the empty string both mean "absent"
(CSV has no null), and numbers may arrive as strings (CSV has no types).

Decisions the contract leaves open, and why:

* **Gauge only.** ``psi``/``psig``, ``bar``/``barg``, ``kPa``/``kPag``, ``MPa``/``MPag`` are
  gauge; absolute units (``psia``, ``bara``, ``kPaa``, ``MPaa``) are rejected with a clear
  reason. WIMS stores gauge pressure, and subtracting a standard atmosphere would hide a
  local-barometric error of up to ~0.1 bar; the historian knows its own site and must convert.
* **Both annulus_id and tag given.** Accepted only when the tag resolves to that same
  annulus; otherwise the record is rejected as ``conflicting_annulus`` (guessing which one
  the sender meant could file readings against the wrong annulus).
* **Timestamps** must be ISO 8601 strings with an offset or ``Z``. Epoch numbers are refused:
  seconds, milliseconds and microseconds are indistinguishable for some ranges, and a wrong
  guess silently moves data by decades. Naive times are refused for the same reason (which
  zone?). Late and replayed data are accepted (historians buffer and replay); only times
  more than ``max_future`` ahead of ``now`` are refused.
* **Bad quality.** A bad reading is stored and shown as bad but never used in calculations,
  so its value may be absent. PI digital states ("Bad Input", "I/O Timeout", ...) sent as
  the pressure value, as a string or as ``{"Name": "Bad Input", ...}``, make the record
  bad with pressure ``None`` whatever ``quality`` says: the value itself says the sensor
  has no reading. For a bad record, a non-finite or out-of-range value is stored as
  ``None`` instead of refusing the record: the fact "sensor bad at t" is itself a finding
  (a missing reading), and the garbage number carries no information.
  A good or uncertain record needs a finite, in-range pressure.
* **Duplicates within one request** (same annulus and timestamp after tag resolution): the
  first accepted record wins, later ones are rejected. Across requests the deterministic
  ``reading_id`` lets storage keep a single row for a re-push or replay.

Performance: the ingest path targets >= 50,000 readings/s per process on a slow 2-core box,
JSON parsing and Kafka included, so the common record (int ``annulus_id``, ``Z`` timestamp,
float pressure, default units) is checked with plain dict access, ``type(x) is`` tests and
closure-local lookups; anything unusual drops to slower helper functions.
"""

import csv
import hashlib
import math
import numbers
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.contracts.enums import Quality
from shared.domain.units import BAR_PER_PSI

# --------------------------------------------------------------------------------------
# Reason codes: a short, fixed vocabulary used as a low-cardinality metrics label. The
# human-readable detail goes in FieldError.reason, never in the code.
# --------------------------------------------------------------------------------------
REASON_INVALID: Final = "invalid"
REASON_NOT_AN_OBJECT: Final = "not_an_object"
REASON_MALFORMED_ROW: Final = "malformed_row"
REASON_MISSING_FIELD: Final = "missing_field"
REASON_BAD_TYPE: Final = "bad_type"
REASON_NOT_FINITE: Final = "not_finite"
REASON_OUT_OF_RANGE: Final = "out_of_range"
REASON_BAD_UNIT: Final = "bad_unit"
REASON_BAD_QUALITY: Final = "bad_quality"
REASON_BAD_TIMESTAMP: Final = "bad_timestamp"
REASON_NAIVE_TIMESTAMP: Final = "naive_timestamp"
REASON_FUTURE_TIMESTAMP: Final = "future_timestamp"
REASON_UNKNOWN_TAG: Final = "unknown_tag"
REASON_UNKNOWN_ANNULUS: Final = "unknown_annulus"
REASON_CONFLICTING_ANNULUS: Final = "conflicting_annulus"
REASON_DUPLICATE: Final = "duplicate"

REASON_CODES: Final[frozenset[str]] = frozenset(
    {
        REASON_INVALID,
        REASON_NOT_AN_OBJECT,
        REASON_MALFORMED_ROW,
        REASON_MISSING_FIELD,
        REASON_BAD_TYPE,
        REASON_NOT_FINITE,
        REASON_OUT_OF_RANGE,
        REASON_BAD_UNIT,
        REASON_BAD_QUALITY,
        REASON_BAD_TIMESTAMP,
        REASON_NAIVE_TIMESTAMP,
        REASON_FUTURE_TIMESTAMP,
        REASON_UNKNOWN_TAG,
        REASON_UNKNOWN_ANNULUS,
        REASON_CONFLICTING_ANNULUS,
        REASON_DUPLICATE,
    }
)

# The uuid5 namespace of reading ids. It was derived once as
# uuid5(NAMESPACE_URL, "https://wims.example/ns/annulus-reading") and is now a constant of
# the data model: changing it would give every replayed reading a new id (double rows).
READING_NAMESPACE: Final = uuid.UUID("1e388280-398e-516d-8c90-f939c8be946d")

# 1 psi = 6894.757293168361 Pa exactly (lbf/in² from the international pound and inch).
PSI_TO_BAR: Final = BAR_PER_PSI
# Full vacuum in gauge terms: a gauge pressure cannot be lower than minus one atmosphere.
FULL_VACUUM_BAR: Final = -1.01325


# --------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one record. ``code`` is one of ``REASON_CODES``."""

    field: str
    reason: str
    code: str = REASON_INVALID


@dataclass(frozen=True, slots=True)
class ReadingLimits:
    """Physical plausibility limits, after conversion to bar and °C (configurable)."""

    pressure_min_bar: float = FULL_VACUUM_BAR
    pressure_max_bar: float = 2000.0
    temperature_min_c: float = -60.0
    temperature_max_c: float = 400.0
    max_future: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        # Refuse a misconfiguration at start-up rather than rejecting every reading later.
        if not self.pressure_min_bar < self.pressure_max_bar:
            raise ValueError("pressure_min_bar must be below pressure_max_bar")
        if not self.temperature_min_c < self.temperature_max_c:
            raise ValueError("temperature_min_c must be below temperature_max_c")
        if self.max_future < timedelta(0):
            raise ValueError("max_future must not be negative")


DEFAULT_LIMITS: Final = ReadingLimits()


@dataclass(frozen=True, slots=True)
class NormalisedReading:
    """A validated reading in storage units: bar (gauge), °C, UTC."""

    annulus_id: int
    ts: datetime
    ts_epoch_us: int
    pressure_bar: float | None
    temperature_c: float | None
    quality: Quality
    source: str
    reading_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused record: its position in the request, every error found, the record as sent."""

    index: int
    errors: tuple[FieldError, ...]
    record: Any


@dataclass(slots=True)
class BatchResult:
    accepted: list[NormalisedReading] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def reason_counts(self) -> dict[str, int]:
        """Errors per reason code, ready to add to a metrics counter labelled by code."""
        counts: dict[str, int] = {}
        for rejection in self.rejected:
            for error in rejection.errors:
                counts[error.code] = counts.get(error.code, 0) + 1
        return counts


class MalformedCsvRow(dict[str, str]):
    """A CSV row whose field count differs from the header's.

    It is still a dict (whatever columns could be paired up) so the stream keeps flowing,
    and validation turns it into a ``malformed_row`` rejection carrying ``problem``.
    """

    __slots__ = ("problem",)

    def __init__(self, pairs: Iterable[tuple[str, str]], problem: str) -> None:
        super().__init__(pairs)
        self.problem = problem


# --------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------
# Keys are "folded" spellings (see _fold_unit). psi/bar/kPa/MPa without a suffix are taken
# as gauge, the field convention for wellhead annulus gauges.
_PRESSURE_FACTORS: Final[dict[str, float]] = {
    "bar": 1.0,
    "barg": 1.0,
    "psi": PSI_TO_BAR,
    "psig": PSI_TO_BAR,
    "kpa": 0.01,
    "kpag": 0.01,
    "mpa": 10.0,
    "mpag": 10.0,
}
_ABSOLUTE_PRESSURE_UNITS: Final = frozenset({"bara", "psia", "kpaa", "mpaa"})
# Exact spellings seen on the wire, looked up before any string work (the fast path).
_PRESSURE_EXACT: Final[dict[str, float]] = {
    **_PRESSURE_FACTORS,
    "kPa": 0.01,
    "MPa": 10.0,
    "kPag": 0.01,
    "MPag": 10.0,
}

_CELSIUS, _FAHRENHEIT = "C", "F"
_TEMPERATURE_UNITS: Final[dict[str, str]] = {
    "degc": _CELSIUS,
    "c": _CELSIUS,
    "°c": _CELSIUS,
    "ºc": _CELSIUS,  # masculine ordinal, a common stand-in for the degree sign
    "℃": _CELSIUS,
    "celsius": _CELSIUS,
    "degf": _FAHRENHEIT,
    "f": _FAHRENHEIT,
    "°f": _FAHRENHEIT,
    "ºf": _FAHRENHEIT,
    "℉": _FAHRENHEIT,
    "fahrenheit": _FAHRENHEIT,
}
_TEMPERATURE_EXACT: Final[dict[str, str]] = {
    **_TEMPERATURE_UNITS,
    "degC": _CELSIUS,
    "°C": _CELSIUS,
    "C": _CELSIUS,
    "degF": _FAHRENHEIT,
    "°F": _FAHRENHEIT,
    "F": _FAHRENHEIT,
}


def _fold_unit(unit: str) -> str:
    # Case and inner whitespace carry no meaning in unit spellings ("deg C", " PSI ").
    return "".join(unit.split()).casefold()


def _pressure_factor(unit: Any) -> tuple[float | None, str | None]:
    """(multiplier to bar, None) or (None, reason) for a given (non-empty) unit."""
    if not isinstance(unit, str):
        return None, f"pressure_unit must be a string, got {type(unit).__name__}"
    folded = _fold_unit(unit)
    factor = _PRESSURE_FACTORS.get(folded)
    if factor is not None:
        return factor, None
    if folded in _ABSOLUTE_PRESSURE_UNITS:
        return None, (
            f"absolute pressure unit {unit!r} is not accepted: WIMS stores gauge pressure "
            "(convert at the source; gauge = absolute - local atmospheric)"
        )
    return None, f"unknown pressure unit {_show(unit)} (expected bar, psi, kPa or MPa)"


def _temperature_scale(unit: Any) -> tuple[str | None, str | None]:
    if not isinstance(unit, str):
        return None, f"temperature_unit must be a string, got {type(unit).__name__}"
    scale = _TEMPERATURE_UNITS.get(_fold_unit(unit))
    if scale is None:
        return None, f"unknown temperature unit {_show(unit)} (expected degC or degF)"
    return scale, None


def pressure_to_bar(value: float, unit: str | None = None) -> float:
    """Convert a gauge pressure to bar; ``unit`` None means bar. ValueError if unknown/absolute."""
    if unit is None or unit == "":
        return float(value)
    factor, reason = _pressure_factor(unit)
    if factor is None:
        raise ValueError(reason)
    return value * factor


def temperature_to_c(value: float, unit: str | None = None) -> float:
    """Convert a temperature to °C; ``unit`` None means °C. ValueError if unknown."""
    if unit is None or unit == "":
        return float(value)
    scale, reason = _temperature_scale(unit)
    if scale is None:
        raise ValueError(reason)
    return (value - 32.0) * 5.0 / 9.0 if scale is _FAHRENHEIT else float(value)


# --------------------------------------------------------------------------------------
# Quality
# --------------------------------------------------------------------------------------
_QUALITY_WORDS: Final[dict[str, Quality]] = {
    "good": Quality.good,
    "uncertain": Quality.uncertain,
    "bad": Quality.bad,
    # PI Web API flags, used as words by some exporters.
    "questionable": Quality.uncertain,
    "substituted": Quality.uncertain,
}
# Prefix rules for OPC UA symbolic names (GoodNoData, UncertainLastUsableValue,
# BadSensorFailure...) and OPC classic names (OPC_QUALITY_GOOD...). Order matters only in
# that no prefix is a prefix of another.
_QUALITY_PREFIXES: Final = (
    ("good", Quality.good),
    ("uncertain", Quality.uncertain),
    ("bad", Quality.bad),
)
_OPC_UA_SEVERITY: Final = (Quality.good, Quality.uncertain, Quality.bad, Quality.bad)


def _quality_from_status_code(code: int) -> Quality | None:
    # OPC UA StatusCode is a UInt32; some stacks hand it over as a signed Int32.
    if -(2**31) <= code < 0:
        code &= 0xFFFFFFFF
    if not 0 <= code <= 0xFFFFFFFF:
        return None
    # Top two bits: 00 good, 01 uncertain, 10 bad (11 is reserved; treat it as bad).
    return _OPC_UA_SEVERITY[code >> 30]


def normalise_quality(value: Any) -> Quality | None:
    """Map a historian's quality to :class:`Quality`; ``None`` means "not recognised".

    Accepted: ``Quality`` members; the words good/uncertain/bad (any case) and PI's
    questionable/substituted (uncertain); OPC UA and OPC classic symbolic names by prefix
    (``GoodNoData``, ``UncertainLastUsableValue``, ``BadSensorFailure``, ``OPC_QUALITY_BAD``);
    OPC UA numeric status codes as int, decimal or ``0x`` hex strings (top two bits decide);
    an OPC UA JSON status ``{"Code": ..., "Symbol": ...}``; a PI value's flags
    ``{"Good": bool, "Questionable": bool, "Substituted": bool}``; a bare bool (PI's Good
    flag). OPC classic 8-bit numeric qualities (192 = good) are NOT accepted: as integers
    they collide with OPC UA codes (0 is good in UA, bad in classic).
    Absence (``None``) is not a quality; the caller applies the default.
    """
    if type(value) is Quality:
        return value
    if isinstance(value, bool):
        return Quality.good if value else Quality.bad
    if isinstance(value, int):
        return _quality_from_status_code(value)
    if isinstance(value, str):
        return _quality_from_text(value)
    if isinstance(value, Mapping):
        return _quality_from_mapping(value)
    return None


def _quality_from_text(text: str) -> Quality | None:
    word = text.strip().lower()
    quality = _QUALITY_WORDS.get(word)
    if quality is not None:
        return quality
    if not word or not word.isprintable():
        # A control character (a NUL...) is no part of any quality name: without this,
        # "good\x00x" passed the prefix rule below as good.
        return None
    if word.startswith("0x"):
        try:
            return _quality_from_status_code(int(word, 16))
        except ValueError:
            return None
    if word.isascii() and word.lstrip("-").isdigit():
        try:  # int() refuses "--5" and strings over 4300 digits
            return _quality_from_status_code(int(word))
        except ValueError:
            return None
    word = word.removeprefix("opc_quality_")
    for prefix, quality in _QUALITY_PREFIXES:
        if word.startswith(prefix):
            return quality
    return None


# An OPC UA status or a PI flags object has at most a handful of keys; a bigger object is
# not a quality, and folding all its keys would cost time in proportion to its size.
_MAX_QUALITY_KEYS: Final = 16


def _quality_from_mapping(value: Mapping[Any, Any]) -> Quality | None:
    if len(value) > _MAX_QUALITY_KEYS:
        return None
    flags = {str(k).casefold(): v for k, v in value.items()}
    if "code" in flags:  # OPC UA JSON encoding of a StatusCode
        code = flags["code"]
        if isinstance(code, int) and not isinstance(code, bool):
            return _quality_from_status_code(code)
        return None
    if "symbol" in flags:
        symbol = flags["symbol"]
        return _quality_from_text(symbol) if isinstance(symbol, str) else None
    if not flags.keys() & {"good", "questionable", "substituted"}:
        return None
    # PI Web API sends every flag; a missing one means "not raised".
    good = flags.get("good", True)
    questionable = flags.get("questionable", False)
    substituted = flags.get("substituted", False)
    if not (type(good) is bool and type(questionable) is bool and type(substituted) is bool):
        return None
    if not good:
        return Quality.bad
    # A substituted value was typed in or replaced, not measured: not fully trustworthy.
    if questionable or substituted:
        return Quality.uncertain
    return Quality.good


# --------------------------------------------------------------------------------------
# PI digital states sent in place of a number
# --------------------------------------------------------------------------------------
# The PI "System" digital state set's states that mean "no valid value". Matched
# case-insensitively with whitespace collapsed. A strict list (not "any non-number"):
# otherwise a malformed number such as "1450,3" would silently become a bad reading.
PI_DIGITAL_STATES: Final[frozenset[str]] = frozenset(
    s.casefold()
    for s in (
        "Bad Input",
        "Bad Output",
        "Bad Data",
        "Bad Quality",
        "Bad Total",
        "Bad Lab Data",
        "Set to Bad",
        "I/O Timeout",
        "Equip Fail",
        "Scan Off",
        "Scan On",
        "Scan Timeout",
        "Calc Failed",
        "Calc Timeout",
        "Calc Overflow",
        "Comm Fail",
        "Shutdown",
        "Pt Created",
        "Configure",
        "No Data",
        "No Sample",
        "No Result",
        "Over Range",
        "Under Range",
        "Intf Shut",
        "Out of Serv",
        "Not Connected",
        "Unit Down",
        "Invalid Data",
        "Invalid Float",
        "Wrong Type",
        "Doubtful",
        "Failed",
        "Error",
        "Access Denied",
        "Arc Off-line",
        "ISU Saw No Data",
        "Future Data Unsupported",
    )
)


def _digital_state(text: str) -> str | None:
    name = " ".join(text.split())
    return name if name.casefold() in PI_DIGITAL_STATES else None


# --------------------------------------------------------------------------------------
# Slow-path helpers (anything but the common case)
# --------------------------------------------------------------------------------------
def _show(value: Any) -> str:
    # Bound the echo of user input in error messages (logs, HTTP responses), and its cost:
    # repr() of a whole 30 MB nested list sent as one field would hold the event loop for
    # as long as it takes, so only short prefixes of strings and scalars are ever rendered.
    if isinstance(value, str):
        text = repr(value[:61])
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "<int>"
    elif isinstance(value, Sized):
        return f"<{type(value).__name__} of {len(value)} items>"
    else:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _coerce_number(value: Any, name: str) -> tuple[float | None, str | None, FieldError | None]:
    """(number, None, None), (None, digital state, None), (None, None, error) or all None
    for an absent value."""
    if _absent(value):
        return None, None, None
    if type(value) is int:  # JSON integers (0, 1450) are common: skip the ABC checks below
        try:
            return float(value), None, None
        except OverflowError:
            return None, None, FieldError(name, f"{name} is too large", REASON_OUT_OF_RANGE)
    if isinstance(value, bool):  # JSON true/false is an int subclass in Python: not a number
        return (
            None,
            None,
            FieldError(name, f"{name} must be a number, got a boolean", REASON_BAD_TYPE),
        )
    if isinstance(value, str):
        try:
            return float(value), None, None
        except ValueError:
            pass
        state = _digital_state(value)
        if state is not None:
            return None, state, None
        return (
            None,
            None,
            FieldError(name, f"{name} {_show(value)} is not a number", REASON_BAD_TYPE),
        )
    if isinstance(value, Mapping):  # PI Web API digital state: {"Name": "Bad Input", ...}
        state = value.get("Name", value.get("name"))
        if isinstance(state, str) and state.strip():
            return None, " ".join(state.split()), None
        return (
            None,
            None,
            FieldError(name, f"{name} must be a number, got an object", REASON_BAD_TYPE),
        )
    if isinstance(value, numbers.Real):  # float subclasses, numpy scalars, Fraction
        try:
            return float(value), None, None
        except OverflowError:
            return None, None, FieldError(name, f"{name} is too large", REASON_OUT_OF_RANGE)
    return (
        None,
        None,
        FieldError(name, f"{name} must be a number, got {type(value).__name__}", REASON_BAD_TYPE),
    )


def _range_error(name: str, value: float, unit: str, low: float, high: float) -> FieldError:
    if not math.isfinite(value):
        return FieldError(name, f"{name} is not finite ({value})", REASON_NOT_FINITE)
    return FieldError(
        name,
        f"{name} {value:g} {unit} is outside the physical range {low:g}..{high:g} {unit}",
        REASON_OUT_OF_RANGE,
    )


def _parse_annulus_id(value: Any) -> int | FieldError:
    if isinstance(value, bool):
        return FieldError(
            "annulus_id", "annulus_id must be an integer, got a boolean", REASON_BAD_TYPE
        )
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        if len(value.strip()) > 18:  # beyond a BIGINT (and int() refuses > 4300 digits)
            return FieldError("annulus_id", "annulus_id is too large", REASON_OUT_OF_RANGE)
        number = int(value)
    else:
        return FieldError(
            "annulus_id",
            f"annulus_id must be a positive integer, got {_show(value)}",
            REASON_BAD_TYPE,
        )
    if number <= 0:
        return FieldError(
            "annulus_id",
            f"annulus_id must be a positive integer, got {number}",
            REASON_OUT_OF_RANGE,
        )
    return number


def _unknown_annulus(annulus_id: int) -> FieldError:
    return FieldError("annulus_id", f"unknown annulus {annulus_id}", REASON_UNKNOWN_ANNULUS)


def _resolve_annulus(
    raw_id: Any,
    raw_tag: Any,
    resolve_tag: Callable[[str], int | None],
    annulus_exists: Callable[[int], bool],
    tag_cache: dict[str, int | None],
) -> tuple[int | None, list[FieldError]]:
    has_id, has_tag = not _absent(raw_id), not _absent(raw_tag)
    if not has_id and not has_tag:
        return None, [
            FieldError("annulus_id", "annulus_id or tag is required", REASON_MISSING_FIELD)
        ]
    errors: list[FieldError] = []
    annulus_id: int | None = None
    if has_id:
        parsed = _parse_annulus_id(raw_id)
        if isinstance(parsed, FieldError):
            errors.append(parsed)
        elif not annulus_exists(parsed):
            errors.append(_unknown_annulus(parsed))
        else:
            annulus_id = parsed
    if has_tag:
        if not isinstance(raw_tag, str):
            errors.append(
                FieldError(
                    "tag", f"tag must be a string, got {type(raw_tag).__name__}", REASON_BAD_TYPE
                )
            )
            return None, errors
        tag = raw_tag.strip()  # surrounding blanks are never part of a tag name (CSV padding)
        if tag in tag_cache:
            tagged = tag_cache[tag]
        else:
            tagged = tag_cache[tag] = resolve_tag(tag)
        if tagged is None:
            errors.append(FieldError("tag", f"unknown tag {_show(tag)}", REASON_UNKNOWN_TAG))
            return None, errors
        if has_id:
            if annulus_id is not None and tagged != annulus_id:
                errors.append(
                    FieldError(
                        "tag",
                        f"tag {_show(tag)} is annulus {tagged}, but annulus_id says {annulus_id}",
                        REASON_CONFLICTING_ANNULUS,
                    )
                )
                return None, errors
        else:
            annulus_id = tagged
    return (annulus_id if not errors else None), errors


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def _epoch_us(ts: datetime) -> int:
    # Exact integer arithmetic: ts.timestamp() is a float and can round 999999 µs up.
    return (ts - _EPOCH) // _ONE_US


_fromisoformat = datetime.fromisoformat


def _parse_timestamp(raw: Any, now_us: int, latest_us: int) -> tuple[datetime, int] | FieldError:
    """(UTC datetime, epoch µs) or the error. _new_timestamp reads the common case itself
    (a UTC time not in the future) and calls this for everything else."""
    if _absent(raw):
        return FieldError("timestamp", "timestamp is required", REASON_MISSING_FIELD)
    if not isinstance(raw, str):
        return FieldError(
            "timestamp",
            f"timestamp must be an ISO 8601 string with a UTC offset, got {type(raw).__name__} "
            "(epoch numbers are not accepted)",
            REASON_BAD_TYPE,
        )
    if "\x00" in raw:  # fromisoformat would ignore it and everything after it
        return FieldError(
            "timestamp", f"timestamp {_show(raw)} contains a NUL character", REASON_BAD_TIMESTAMP
        )
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        try:  # CSV cells may be padded; only pay for strip() when the plain parse failed
            ts = datetime.fromisoformat(raw.strip())
        except ValueError:
            return FieldError(
                "timestamp", f"timestamp {_show(raw)} is not ISO 8601", REASON_BAD_TIMESTAMP
            )
    if ts.tzinfo is None:  # fromisoformat gives either no tzinfo or a fixed offset
        return FieldError("timestamp", "timestamp has no UTC offset", REASON_NAIVE_TIMESTAMP)
    try:
        if ts.tzinfo is not UTC:
            ts = ts.astimezone(UTC)
        ts_us = _epoch_us(ts)
    except OverflowError:
        return FieldError(
            "timestamp", f"timestamp {_show(raw)} is out of range", REASON_BAD_TIMESTAMP
        )
    if ts_us > latest_us:
        return FieldError(
            "timestamp",
            f"timestamp is {(ts_us - now_us) / 1e6:.0f} s ahead of now "
            f"(limit {(latest_us - now_us) / 1e6:.0f} s)",
            REASON_FUTURE_TIMESTAMP,
        )
    return ts, ts_us


# --------------------------------------------------------------------------------------
# Reading ids
# --------------------------------------------------------------------------------------
_NAMESPACE_BYTES: Final = READING_NAMESPACE.bytes
# uuid5: clear the version nibble and variant bits, then set version 5 / RFC 4122 variant.
_UUID5_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID5_SET: Final = (0x5000 << 64) | (0x8000 << 48)
# uuid.uuid5 costs ~2.7 µs here, mostly UUID.__init__'s argument checks; the same id built
# from the digest and the slot setters costs a third of that. The result is a plain,
# picklable UUID equal to uuid.uuid5(...) (the tests hold it to that).
_new_object = object.__new__
_set_uuid_int = uuid.UUID.__dict__["int"].__set__
_set_uuid_safe = uuid.UUID.__dict__["is_safe"].__set__
_UUID_SAFE_UNKNOWN: Final = uuid.SafeUUID.unknown


def _uuid5_from_name(name: bytes) -> uuid.UUID:
    digest = hashlib.sha1(_NAMESPACE_BYTES + name).digest()
    value = (int.from_bytes(digest[:16]) & _UUID5_CLEAR) | _UUID5_SET
    result = _new_object(uuid.UUID)
    _set_uuid_int(result, value)
    _set_uuid_safe(result, _UUID_SAFE_UNKNOWN)
    return result


def reading_id(annulus_id: int, ts_epoch_us: int, source: str) -> uuid.UUID:
    """uuid5(READING_NAMESPACE, f"{annulus_id}|{ts_epoch_us}|{source}"): same inputs, same id."""
    return _uuid5_from_name(f"{annulus_id}|{ts_epoch_us}|{source}".encode())


# A frozen dataclass __init__ goes through object.__setattr__ per field (~0.85 µs for eight);
# the slot descriptors' own setters do the same work in about half the time. Used only on
# the hot path; the result is an ordinary, equal NormalisedReading.
_reading_setters = tuple(
    NormalisedReading.__dict__[name].__set__
    for name in (
        "annulus_id",
        "ts",
        "ts_epoch_us",
        "pressure_bar",
        "temperature_c",
        "quality",
        "source",
        "reading_id",
    )
)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def _add(errors: list[FieldError] | None, error: FieldError) -> list[FieldError]:
    # Error lists are created lazily: a good record (the common case) allocates none.
    if errors is None:
        return [error]
    errors.append(error)
    return errors


def _duplicate_error(first: int) -> FieldError:
    return FieldError("timestamp", f"duplicate of record {first} in this request", REASON_DUPLICATE)


@dataclass(slots=True)
class _RequestState:
    """What one request's validation remembers between slices of its records."""

    # Per-request caches: a historian push carries many tags sampled at the same instant,
    # and many readings of the same tag.
    ts_cache: dict[str, tuple[datetime, int] | FieldError] = field(default_factory=dict)
    tag_cache: dict[str, int | None] = field(default_factory=dict)
    # First accepted index per reading id, for duplicates. The id's int is the key: `source`
    # is fixed for the request, so it stands for (annulus_id, ts_epoch_us), and an int key
    # adds no GC-tracked object.
    seen: dict[int, int] = field(default_factory=dict)


# Quality.good and .bad as plain names: looking an enum member up costs ~70 ns (Python 3.11).
_GOOD: Final = Quality.good
_BAD: Final = Quality.bad


def _refusal(record: Any) -> FieldError | None:
    """Why a record that is not a plain dict is refused, or None for any other mapping."""
    if isinstance(record, MalformedCsvRow):
        return FieldError("record", record.problem, REASON_MALFORMED_ROW)
    if not isinstance(record, Mapping):
        return FieldError(
            "record",
            f"record must be an object, got {type(record).__name__}",
            REASON_NOT_AN_OBJECT,
        )
    return None


def _new_timestamp(
    raw: Any, now_us: int, latest_us: int, ts_cache: dict[str, tuple[datetime, int] | FieldError]
) -> tuple[datetime, int] | FieldError:
    """A timestamp the request has not cached: a string is read (here when it is a UTC time
    not in the future, else by _parse_timestamp) and cached, errors too (``now`` is fixed
    for the request); any other value goes to _parse_timestamp uncached."""
    if type(raw) is not str:
        return _parse_timestamp(raw, now_us, latest_us)
    try:
        # CPython's fromisoformat stops reading at a NUL ("...Z\x00junk" parses): such a
        # string goes to the slow path, which refuses it.
        ts = _fromisoformat(raw) if "\x00" not in raw else None
    except ValueError:
        ts = None
    parsed = None
    if ts is not None and ts.tzinfo is UTC:
        ts_us = (ts - _EPOCH) // _ONE_US
        parsed = (ts, ts_us) if ts_us <= latest_us else None
    if parsed is None:
        parsed = _parse_timestamp(raw, now_us, latest_us)
    ts_cache[raw] = parsed
    return parsed


def _measurements(
    raw_q: Any,
    pressure: Any,
    p_unit: Any,
    temperature: Any,
    t_unit: Any,
    errors: list[FieldError] | None,
    limits: ReadingLimits,
) -> tuple[Quality | None, float | None, float | None, list[FieldError] | None]:
    """Quality, pressure (bar) and temperature (°C) of a record off the fast path of
    _validate, with the errors found added to ``errors``."""
    # Quality: absent means good.
    if raw_q is None or raw_q == "good" or raw_q == "":
        quality: Quality | None = _GOOD
    else:
        quality = normalise_quality(raw_q)
        if quality is None:
            errors = _add(
                errors,
                FieldError(
                    "quality",
                    f"unrecognised quality {_show(raw_q)} (expected good/uncertain/bad, "
                    "an OPC UA status code or PI quality flags)",
                    REASON_BAD_QUALITY,
                ),
            )

    # Pressure: required unless the quality is bad.
    pressure_failed = False
    if type(pressure) is not float:
        pressure, state, error = _coerce_number(pressure, "pressure")
        if state is not None:
            quality = _BAD  # the value itself says the sensor has no reading
        if error is not None:
            pressure_failed = True
            errors = _add(errors, error)
    if p_unit is not None and p_unit != "bar" and p_unit != "":
        factor = _PRESSURE_EXACT.get(p_unit) if type(p_unit) is str else None
        if factor is None:
            factor, reason = _pressure_factor(p_unit)
            if factor is None:
                pressure_failed = True
                errors = _add(errors, FieldError("pressure_unit", str(reason), REASON_BAD_UNIT))
        if pressure is not None and factor is not None:
            pressure *= factor
    if pressure is not None:
        p_min, p_max = limits.pressure_min_bar, limits.pressure_max_bar
        # One chained comparison also catches NaN and ±inf: every comparison with NaN
        # is False, and an infinity lies outside any finite range.
        if not p_min <= pressure <= p_max:
            if quality is _BAD:
                pressure = None
            elif not pressure_failed:
                errors = _add(errors, _range_error("pressure", pressure, "bar", p_min, p_max))
    elif quality is not _BAD and not pressure_failed:
        errors = _add(
            errors,
            FieldError(
                "pressure", "pressure is required unless quality is bad", REASON_MISSING_FIELD
            ),
        )

    # Temperature: optional; a digital state here just means "no temperature".
    scale: str | None = _CELSIUS
    if t_unit is not None and t_unit != "degC" and t_unit != "":
        scale = _TEMPERATURE_EXACT.get(t_unit) if type(t_unit) is str else None
        if scale is None:
            scale, reason = _temperature_scale(t_unit)
            if scale is None:
                errors = _add(errors, FieldError("temperature_unit", str(reason), REASON_BAD_UNIT))
    if temperature is not None:
        if type(temperature) is not float:
            temperature, _state, error = _coerce_number(temperature, "temperature")
            if error is not None:
                errors = _add(errors, error)
        if temperature is not None and scale is not None:
            if scale is not _CELSIUS:
                temperature = (temperature - 32.0) * 5.0 / 9.0
            t_min, t_max = limits.temperature_min_c, limits.temperature_max_c
            if not t_min <= temperature <= t_max:
                if quality is _BAD:
                    temperature = None
                else:
                    errors = _add(
                        errors, _range_error("temperature", temperature, "°C", t_min, t_max)
                    )
    return quality, pressure, temperature, errors


def _start(
    source: str, now: datetime, limits: ReadingLimits, state: _RequestState | None
) -> tuple[_RequestState, int, int, bytes]:
    """Check _validate's arguments; the request state, now and the latest accepted time (in
    epoch µs) and the suffix of every reading id's name."""
    if not isinstance(source, str) or not source:
        raise ValueError("source must be a non-empty string")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now_us = _epoch_us(now)
    latest_us = now_us + limits.max_future // _ONE_US
    return (
        state if state is not None else _RequestState(),
        now_us,
        latest_us,
        b"|" + source.encode(),
    )


def _validate(
    records: Iterable[Any],
    source: str,
    now: datetime,
    resolve_tag: Callable[[str], int | None],
    annulus_exists: Callable[[int], bool],
    limits: ReadingLimits,
    state: _RequestState | None = None,
    base: int = 0,
) -> BatchResult:
    """The one validation loop behind validate_batch, validate_record and BatchValidator:
    everything it touches is bound to locals, and the common record makes no call of its
    own (on the hot path a call or a global lookup per record is a measurable share of the
    budget); anything else goes to the helpers above. ``state`` carries the caches and the
    duplicate index from earlier slices of the request, whose first record is ``base``."""
    state, now_us, latest_us, name_suffix = _start(source, now, limits, state)
    p_min, p_max = limits.pressure_min_bar, limits.pressure_max_bar
    t_min, t_max = limits.temperature_min_c, limits.temperature_max_c
    ts_cache, tag_cache, seen = state.ts_cache, state.tag_cache, state.seen
    ts_cache_get, seen_get = ts_cache.get, seen.get
    sha1, from_bytes, ns_bytes = hashlib.sha1, int.from_bytes, _NAMESPACE_BYTES
    uuid_cls, uuid_clear, uuid_set = uuid.UUID, _UUID5_CLEAR, _UUID5_SET
    set_uuid_int, set_uuid_safe, safe_unknown = _set_uuid_int, _set_uuid_safe, _UUID_SAFE_UNKNOWN
    new, reading_cls, good = _new_object, NormalisedReading, _GOOD
    set_aid, set_ts, set_us, set_p, set_t, set_q, set_src, set_rid = _reading_setters
    accepted: list[NormalisedReading] = []
    rejected: list[Rejection] = []
    accept, reject = accepted.append, rejected.append

    for index, record in enumerate(records, base):
        if type(record) is not dict and (refused := _refusal(record)) is not None:
            reject(Rejection(index, (refused,), record))
            continue
        get = record.get
        errors: list[FieldError] | None = None

        annulus_id = get("annulus_id")
        raw_ts = get("timestamp")
        pressure = get("pressure")
        if len(record) != 3 or annulus_id is None or raw_ts is None or pressure is None:
            tag, raw_q, p_unit = get("tag"), get("quality"), get("pressure_unit")
            temperature, t_unit = get("temperature"), get("temperature_unit")
        else:
            # Only the three required keys: five lookups saved on the most common shape.
            tag = raw_q = p_unit = temperature = t_unit = None

        # Annulus. Fast path: a positive int id and no tag.
        if type(annulus_id) is int and tag is None and annulus_id > 0:
            if not annulus_exists(annulus_id):
                errors = [_unknown_annulus(annulus_id)]
                annulus_id = None
        else:
            annulus_id, found = _resolve_annulus(
                annulus_id, tag, resolve_tag, annulus_exists, tag_cache
            )
            if found:
                errors = found

        # Timestamp, memoised per request (errors too: `now` is fixed for the request).
        parsed = ts_cache_get(raw_ts) if type(raw_ts) is str else None
        if parsed is None:
            parsed = _new_timestamp(raw_ts, now_us, latest_us, ts_cache)
        if type(parsed) is tuple:
            ts, ts_us = parsed
        else:
            ts = ts_us = None
            errors = _add(errors, parsed)

        # Quality, pressure, temperature. Fast path: quality good, a float pressure in bar
        # within the limits (the chained comparison is False for NaN and ±inf too), and no
        # temperature or a float one in °C within the limits.
        if (
            (raw_q is None or raw_q == "good" or raw_q == "")
            and type(pressure) is float
            and (p_unit is None or p_unit == "bar" or p_unit == "")
            and p_min <= pressure <= p_max
            and (t_unit is None or t_unit == "degC" or t_unit == "")
            and (
                temperature is None
                or (type(temperature) is float and t_min <= temperature <= t_max)
            )
        ):
            quality: Quality | None = good
        else:
            quality, pressure, temperature, errors = _measurements(
                raw_q, pressure, p_unit, temperature, t_unit, errors, limits
            )

        if errors is None:
            # reading_id = uuid5(READING_NAMESPACE, "<annulus_id>|<ts_epoch_us>|<source>"),
            # built inline (_uuid5_from_name says why); its int is the key of `seen`.
            digest = sha1(b"%b%d|%d%b" % (ns_bytes, annulus_id, ts_us, name_suffix)).digest()
            rid_int = (from_bytes(digest[:16]) & uuid_clear) | uuid_set
            first = seen_get(rid_int)
            if first is None:
                seen[rid_int] = index
                rid = new(uuid_cls)
                set_uuid_int(rid, rid_int)
                set_uuid_safe(rid, safe_unknown)
                reading = new(reading_cls)
                set_aid(reading, annulus_id)
                set_ts(reading, ts)
                set_us(reading, ts_us)
                set_p(reading, pressure)
                set_t(reading, temperature)
                set_q(reading, quality)
                set_src(reading, source)
                set_rid(reading, rid)
                accept(reading)
                continue
            errors = [_duplicate_error(first)]
        elif annulus_id is not None and ts_us is not None:
            first = seen_get(reading_id(annulus_id, ts_us, source).int)
            if first is not None:
                errors.append(_duplicate_error(first))
        reject(Rejection(index, tuple(errors), record))

    return BatchResult(accepted, rejected)


def validate_record(
    record: Any,
    *,
    source: str,
    now: datetime,
    resolve_tag: Callable[[str], int | None],
    annulus_exists: Callable[[int], bool],
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> NormalisedReading | tuple[FieldError, ...]:
    """Validate one record: the reading, or every error found (a non-empty tuple).

    ``resolve_tag`` maps a tag to the id of an existing annulus (None if unknown);
    ``annulus_exists`` says whether an ``annulus_id`` names an annulus. ``now`` must be
    timezone-aware. Raises ValueError only for bad arguments, never for bad records.
    """
    result = _validate((record,), source, now, resolve_tag, annulus_exists, limits)
    if result.accepted:
        return result.accepted[0]
    return result.rejected[0].errors


def validate_batch(
    records: Iterable[Any],
    *,
    source: str,
    now: datetime,
    resolve_tag: Callable[[str], int | None],
    annulus_exists: Callable[[int], bool],
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> BatchResult:
    """Validate a request's records; good ones are kept even when others fail.

    Rejections carry the record's 0-based position in ``records`` and all its errors. A
    record with the same annulus and timestamp as an earlier *accepted* record is rejected
    as a duplicate ("duplicate of record <i> in this request"). ``records`` may be a
    stream (e.g. :func:`iter_csv_records`); it is consumed once.
    """
    return _validate(records, source, now, resolve_tag, annulus_exists, limits)


class BatchValidator:
    """One request's records validated a slice at a time, with the same outcome as
    :func:`validate_batch` over all of them at once.

    Indexes continue from slice to slice, and a record repeating an accepted record of an
    earlier slice is rejected as a duplicate. The ingest service validates big requests
    this way so that it can serve other requests between two slices (services/ingest/processing.py).
    """

    __slots__ = ("_args", "_state", "count", "result")

    def __init__(
        self,
        *,
        source: str,
        now: datetime,
        resolve_tag: Callable[[str], int | None],
        annulus_exists: Callable[[int], bool],
        limits: ReadingLimits = DEFAULT_LIMITS,
    ) -> None:
        self._args = (source, now, resolve_tag, annulus_exists, limits)
        self._state = _RequestState()
        self.count = 0
        self.result = BatchResult()

    def feed(self, records: Sequence[Any]) -> BatchResult:
        """Validate the next slice; returns this slice's result (also added to ``result``)."""
        part = _validate(records, *self._args, state=self._state, base=self.count)
        self.count += len(records)
        self.result.accepted += part.accepted
        self.result.rejected += part.rejected
        return part


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------
#: Most columns a CSV header may have. A reading has eight fields; historian exports add a
#: few of their own (ignored). A header of thousands of columns is not an export of
#: readings, and every row would then be paired up with all of them.
MAX_CSV_COLUMNS: Final = 256


def iter_csv_records(
    lines: Iterable[str], max_columns: int = MAX_CSV_COLUMNS
) -> Iterator[dict[str, str]]:
    """Stream CSV lines into records keyed by the header's column names.

    The first non-blank row is the header (names are trimmed and lower-cased; a UTF-8 BOM
    is dropped). It must name ``timestamp``, ``pressure`` and ``annulus_id`` or ``tag``,
    name no column twice and have at most ``max_columns`` columns, else ValueError naming
    the problem. Values stay strings; validation parses them and treats "" as absent.
    Blank lines are skipped. A row with the wrong number of fields is yielded as a
    :class:`MalformedCsvRow`, which validation rejects. Input that the csv module cannot
    tokenise at all (e.g. a NUL byte, a runaway quoted field) raises ValueError with the
    line number: past that point the row boundaries are unknown.
    """
    reader = csv.reader(lines)
    header: list[str] | None = None
    try:
        for row in reader:
            if not row:
                continue
            if header is None:
                header = _parse_header(row, max_columns)
                width = len(header)
                continue
            if len(row) == width:
                yield dict(zip(header, row, strict=True))
            else:
                yield MalformedCsvRow(
                    zip(header, row, strict=False),
                    f"CSV line {reader.line_num} has {len(row)} fields, the header has {width}",
                )
    except csv.Error as exc:
        raise ValueError(f"CSV line {reader.line_num}: {exc}") from exc
    if header is None:
        raise ValueError("CSV input is empty: a header row is required")


def _list_names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(_show(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _parse_header(row: list[str], max_columns: int) -> list[str]:
    # Linear in the header's size: it is checked on the event loop, before any row.
    if len(row) > max_columns:
        raise ValueError(
            f"CSV header has {len(row)} columns, at most {max_columns} are accepted "
            "(a reading has 8 fields: annulus_id, tag, timestamp, pressure, pressure_unit, "
            "temperature, temperature_unit, quality)"
        )
    names = [name.strip().lower() for name in row]
    names[0] = names[0].removeprefix("\ufeff").strip()
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    repeated = sorted(name for name, n in counts.items() if n > 1 and name)
    if repeated:
        raise ValueError(f"CSV header repeats column(s): {_list_names(repeated)}")
    missing = [name for name in ("timestamp", "pressure") if name not in counts]
    if "annulus_id" not in counts and "tag" not in counts:
        missing.append("annulus_id or tag")
    if missing:
        raise ValueError(
            f"CSV header lacks {', '.join(missing)} (header: {_list_names(names)}); "
            "required: timestamp, pressure and annulus_id or tag"
        )
    return names
