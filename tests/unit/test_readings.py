"""Unit tests for shared.domain.readings: validation and normalisation of SCADA readings."""

import dataclasses
import pickle
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.contracts.enums import Quality
from shared.domain import readings as r
from shared.domain.readings import (
    PSI_TO_BAR,
    READING_NAMESPACE,
    REASON_CODES,
    BatchResult,
    FieldError,
    MalformedCsvRow,
    NormalisedReading,
    ReadingLimits,
    iter_csv_records,
    normalise_quality,
    pressure_to_bar,
    reading_id,
    temperature_to_c,
    validate_batch,
    validate_record,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TS = "2026-11-25T10:00:00Z"
TS_DT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ANNULI = frozenset({17, 18, 19})
TAGS = {"W12/ANN-A/PT": 17, "W12/ANN-B/PT": 18}


def _batch(records: Any, *, source: str = "pi-north", **kwargs: Any) -> BatchResult:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("resolve_tag", TAGS.get)
    kwargs.setdefault("annulus_exists", ANNULI.__contains__)
    result = validate_batch(records, source=source, **kwargs)
    for rejection in result.rejected:  # every code must belong to the metrics vocabulary
        assert rejection.errors
        assert {e.code for e in rejection.errors} <= REASON_CODES
    return result


def _one(record: Any, **kwargs: Any) -> NormalisedReading | tuple[FieldError, ...]:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("resolve_tag", TAGS.get)
    kwargs.setdefault("annulus_exists", ANNULI.__contains__)
    kwargs.setdefault("source", "pi-north")
    return validate_record(record, **kwargs)


def _ok(record: Any, **kwargs: Any) -> NormalisedReading:
    result = _one(record, **kwargs)
    assert isinstance(result, NormalisedReading), result
    return result


def _errors(record: Any, **kwargs: Any) -> dict[str, str]:
    """field -> code of a rejected record (asserting it was rejected)."""
    result = _one(record, **kwargs)
    assert isinstance(result, tuple), result
    assert {e.code for e in result} <= REASON_CODES
    return {e.field: e.code for e in result}


_DROP = object()  # _rec(field=_DROP) leaves the field out (unlike None, which sends null)


def _rec(**fields: Any) -> dict[str, Any]:
    """A valid minimal record with some fields replaced or dropped."""
    record: dict[str, Any] = {"annulus_id": 17, "timestamp": TS, "pressure": 100.0}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not _DROP}


# ------------------------------------------------------------------------- the happy path
def test_minimal_record_defaults_to_bar_celsius_good() -> None:
    reading = _ok({"annulus_id": 17, "timestamp": TS, "pressure": 1450.3})
    assert reading.annulus_id == 17
    assert reading.ts == TS_DT and reading.ts.tzinfo is UTC
    assert reading.ts_epoch_us == 1_795_600_800_000_000
    assert reading.pressure_bar == 1450.3
    assert reading.temperature_c is None
    assert reading.quality is Quality.good
    assert reading.source == "pi-north"


def test_full_wire_record() -> None:
    reading = _ok(
        {
            "annulus_id": 17,
            "timestamp": "2026-11-25T10:00:00Z",
            "pressure": 1450.3,
            "pressure_unit": "psi",
            "temperature": 61.2,
            "temperature_unit": "degC",
            "quality": "good",
            "comment": "unknown fields are ignored",
        }
    )
    assert reading.pressure_bar == pytest.approx(1450.3 * PSI_TO_BAR)
    assert reading.temperature_c == 61.2


def test_integer_values_are_numbers() -> None:
    reading = _ok(_rec(pressure=0, temperature=20))
    assert reading.pressure_bar == 0.0 and isinstance(reading.pressure_bar, float)
    assert reading.temperature_c == 20.0


def test_reading_is_frozen_and_equal_to_a_constructed_one() -> None:
    reading = _ok(_rec())
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.pressure_bar = 1.0  # type: ignore[misc]
    assert reading == NormalisedReading(
        **{f.name: getattr(reading, f.name) for f in dataclasses.fields(reading)}
    )
    assert pickle.loads(pickle.dumps(reading)) == reading


# ------------------------------------------------------------------------------ units
def test_units_psi_to_bar() -> None:
    assert _ok(_rec(pressure=1000.0, pressure_unit="psi")).pressure_bar == pytest.approx(
        68.9476, abs=1e-4
    )
    assert pressure_to_bar(1000.0, "psi") == pytest.approx(68.9476, abs=1e-4)


@pytest.mark.parametrize(
    ("value", "unit", "bar"),
    [
        (150.0, "kPa", 1.5),
        (150.0, "KPA", 1.5),
        (15.0, "MPa", 150.0),
        (15.0, "mpa", 150.0),
        (1000.0, "psig", 68.9476),
        (1000.0, " PSI ", 68.9476),
        (12.5, "bar", 12.5),
        (12.5, "barg", 12.5),
        (12.5, "BAR", 12.5),
        (12.5, None, 12.5),
        (12.5, "", 12.5),
    ],
)
def test_pressure_units(value: float, unit: str | None, bar: float) -> None:
    reading = _ok(_rec(pressure=value, pressure_unit=unit))
    assert reading.pressure_bar == pytest.approx(bar, abs=1e-4)


@pytest.mark.parametrize("unit", ["psia", "PSIA", "bara", "kPaa"])
def test_absolute_pressure_units_are_rejected_with_reason(unit: str) -> None:
    result = _one(_rec(pressure_unit=unit))
    assert isinstance(result, tuple)
    (error,) = result
    assert (error.field, error.code) == ("pressure_unit", r.REASON_BAD_UNIT)
    assert "gauge" in error.reason
    with pytest.raises(ValueError, match="gauge"):
        pressure_to_bar(1.0, unit)


@pytest.mark.parametrize("unit", ["atm", "inHg", "Pa", 5])
def test_unknown_pressure_unit(unit: Any) -> None:
    assert _errors(_rec(pressure_unit=unit)) == {"pressure_unit": r.REASON_BAD_UNIT}


@pytest.mark.parametrize(
    ("unit", "celsius"),
    [
        ("degF", 100.0),
        ("F", 100.0),
        ("°F", 100.0),
        ("fahrenheit", 100.0),
        ("Fahrenheit", 100.0),
        ("deg F", 100.0),
    ],
)
def test_fahrenheit_spellings(unit: str, celsius: float) -> None:
    assert _ok(_rec(temperature=212.0, temperature_unit=unit)).temperature_c == pytest.approx(
        celsius
    )
    assert temperature_to_c(212.0, unit) == pytest.approx(100.0)


@pytest.mark.parametrize("unit", ["degC", "C", "c", "°C", "celsius", "Celsius", "DEGC", None, ""])
def test_celsius_spellings(unit: str | None) -> None:
    assert _ok(_rec(temperature=61.5, temperature_unit=unit)).temperature_c == 61.5


def test_fahrenheit_conversion_points() -> None:
    assert temperature_to_c(32.0, "F") == pytest.approx(0.0)
    assert temperature_to_c(-40.0, "F") == pytest.approx(-40.0)


def test_unknown_temperature_unit_reported_even_without_a_temperature() -> None:
    assert _errors(_rec(temperature=20.0, temperature_unit="K")) == {
        "temperature_unit": r.REASON_BAD_UNIT
    }
    assert _errors(_rec(temperature_unit="kelvin")) == {"temperature_unit": r.REASON_BAD_UNIT}
    with pytest.raises(ValueError, match="unknown temperature unit"):
        temperature_to_c(1.0, "K")


_PRESSURE_UNIT_FACTORS = {"psi": PSI_TO_BAR, "kPa": 0.01, "MPa": 10.0, "bar": 1.0}


@given(
    # Inside the limits: at the very edge float rounding may legitimately tip either way.
    bar=st.floats(min_value=-1.0, max_value=1999.99),
    unit=st.sampled_from(sorted(_PRESSURE_UNIT_FACTORS)),
)
def test_pressure_unit_round_trip(bar: float, unit: str) -> None:
    """A pressure expressed in psi/kPa/MPa converts back to the same bar."""
    sent = bar / _PRESSURE_UNIT_FACTORS[unit]
    reading = _ok(_rec(pressure=sent, pressure_unit=unit))
    assert reading.pressure_bar == pytest.approx(bar, rel=1e-12, abs=1e-12)
    # CSV sends strings: same result.
    assert _ok(_rec(pressure=repr(sent), pressure_unit=unit)).pressure_bar == reading.pressure_bar


# ---------------------------------------------------------------------------- quality
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("good", Quality.good),
        ("Good", Quality.good),
        (" GOOD ", Quality.good),
        ("uncertain", Quality.uncertain),
        ("Uncertain", Quality.uncertain),
        ("bad", Quality.bad),
        ("Bad", Quality.bad),
        ("GoodNoData", Quality.good),
        ("Good_LocalOverride", Quality.good),
        ("UncertainLastUsableValue", Quality.uncertain),
        ("Uncertain_SensorNotAccurate", Quality.uncertain),
        ("BadSensorFailure", Quality.bad),
        ("BadCommunicationFailure", Quality.bad),
        ("OPC_QUALITY_GOOD", Quality.good),
        ("OPC_QUALITY_BAD", Quality.bad),
        ("Questionable", Quality.uncertain),
        ("Substituted", Quality.uncertain),
        (Quality.uncertain, Quality.uncertain),
    ],
)
def test_quality_spellings(value: Any, expected: Quality) -> None:
    assert normalise_quality(value) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, Quality.good),
        (0x00A50000, Quality.good),  # GoodNoData
        (0x40000000, Quality.uncertain),
        (0x408F0000, Quality.uncertain),  # UncertainLastUsableValue
        (0x80000000, Quality.bad),
        (0x808C0000, Quality.bad),  # BadSensorFailure-style code
        (0xC0000000, Quality.bad),  # reserved severity 11: treated as bad
        (0xFFFFFFFF, Quality.bad),
        (-(2**31), Quality.bad),  # 0x80000000 sent as a signed Int32
        ("0x80000000", Quality.bad),
        ("0x40000000", Quality.uncertain),
        ("1073741824", Quality.uncertain),
        ("0", Quality.good),
        ({"Code": 2147483648, "Symbol": "Bad"}, Quality.bad),
        ({"code": 0}, Quality.good),
        ({"Symbol": "UncertainInitialValue"}, Quality.uncertain),
    ],
)
def test_opc_ua_status_codes(code: Any, expected: Quality) -> None:
    assert normalise_quality(code) is expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"Good": True, "Questionable": False, "Substituted": False}, Quality.good),
        ({"Good": False, "Questionable": False, "Substituted": False}, Quality.bad),
        ({"Good": True, "Questionable": True, "Substituted": False}, Quality.uncertain),
        ({"Good": True, "Questionable": False, "Substituted": True}, Quality.uncertain),
        ({"Good": False}, Quality.bad),
        ({"good": True}, Quality.good),
        (True, Quality.good),
        (False, Quality.bad),
    ],
)
def test_pi_quality_flags(flags: Any, expected: Quality) -> None:
    assert normalise_quality(flags) is expected
    assert _ok(_rec(quality=flags)).quality is expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "excellent",
        "0xZZ",
        "12abc",
        "--5",
        "1" * 5000,
        2**32,
        -(2**31) - 1,
        1.5,
        [],
        {"Other": 1},
        {"Good": "yes"},
    ],
)
def test_unrecognised_quality(value: Any) -> None:
    assert normalise_quality(value) is None


def test_unrecognised_quality_rejects_the_record() -> None:
    assert _errors(_rec(quality="excellent")) == {"quality": r.REASON_BAD_QUALITY}


def test_absent_or_empty_quality_means_good() -> None:
    assert _ok(_rec(quality=None)).quality is Quality.good
    assert _ok(_rec(quality="")).quality is Quality.good


def test_numeric_status_code_on_a_record() -> None:
    assert _ok(_rec(quality=0x40000000)).quality is Quality.uncertain
    reading = _ok(_rec(quality=0x80000000))
    assert reading.quality is Quality.bad and reading.pressure_bar == 100.0  # stored, shown bad


# ------------------------------------------------------------------ PI digital states
@pytest.mark.parametrize(
    "state",
    [
        "Bad Input",
        "I/O Timeout",
        "Equip Fail",
        "Scan Off",
        "Calc Failed",
        "Comm Fail",
        "Shutdown",
        "Pt Created",
        "Configure",
        "No Data",
        "Over Range",
        "Under Range",
        "bad input",
        "  Bad   Input ",
        {"Name": "Bad Input", "Value": 307, "IsSystem": True},
        {"Name": "Some Site State", "Value": 3, "IsSystem": False},
    ],
)
def test_pi_digital_state_as_pressure_is_a_bad_reading(state: Any) -> None:
    reading = _ok(_rec(pressure=state))
    assert reading.quality is Quality.bad
    assert reading.pressure_bar is None


def test_digital_state_overrides_a_good_quality() -> None:
    reading = _ok(_rec(pressure="I/O Timeout", quality="good", pressure_unit="psi"))
    assert (reading.quality, reading.pressure_bar) == (Quality.bad, None)


def test_digital_state_as_temperature_means_no_temperature() -> None:
    reading = _ok(_rec(temperature="Bad Input"))
    assert (reading.quality, reading.pressure_bar, reading.temperature_c) == (
        Quality.good,
        100.0,
        None,
    )


@pytest.mark.parametrize("value", ["abc", "1450,3", "12 bar", {"Value": 3}])
def test_other_non_numeric_pressures_are_rejected(value: Any) -> None:
    assert _errors(_rec(pressure=value)) == {"pressure": r.REASON_BAD_TYPE}


# ------------------------------------------------------------------- numbers & ranges
@pytest.mark.parametrize(
    ("value", "code"),
    [
        (float("nan"), r.REASON_NOT_FINITE),
        (float("inf"), r.REASON_NOT_FINITE),
        (float("-inf"), r.REASON_NOT_FINITE),
        ("nan", r.REASON_NOT_FINITE),
        ("Infinity", r.REASON_NOT_FINITE),
        (True, r.REASON_BAD_TYPE),
        ([1.0], r.REASON_BAD_TYPE),
        (10**400, r.REASON_OUT_OF_RANGE),
        (2000.5, r.REASON_OUT_OF_RANGE),
        (-1.1, r.REASON_OUT_OF_RANGE),
    ],
)
def test_bad_pressure_values(value: Any, code: str) -> None:
    assert _errors(_rec(pressure=value)) == {"pressure": code}


def test_pressure_range_is_checked_after_conversion() -> None:
    assert _errors(_rec(pressure=30_000.0, pressure_unit="psi")) == {
        "pressure": r.REASON_OUT_OF_RANGE
    }
    assert _ok(_rec(pressure=29_000.0, pressure_unit="psi")).pressure_bar == pytest.approx(
        1999.48, abs=0.01
    )


def test_pressure_limits_are_inclusive_and_configurable() -> None:
    assert _ok(_rec(pressure=-1.01325)).pressure_bar == -1.01325
    assert _ok(_rec(pressure=2000.0)).pressure_bar == 2000.0
    tight = ReadingLimits(pressure_min_bar=0.0, pressure_max_bar=500.0)
    assert _errors(_rec(pressure=600.0), limits=tight) == {"pressure": r.REASON_OUT_OF_RANGE}
    assert _errors(_rec(pressure=-0.5), limits=tight) == {"pressure": r.REASON_OUT_OF_RANGE}


def test_temperature_range() -> None:
    assert _errors(_rec(temperature=-61.0)) == {"temperature": r.REASON_OUT_OF_RANGE}
    assert _errors(_rec(temperature=401.0)) == {"temperature": r.REASON_OUT_OF_RANGE}
    assert _errors(_rec(temperature=800.0, temperature_unit="F")) == {
        "temperature": r.REASON_OUT_OF_RANGE
    }
    assert _errors(_rec(temperature=float("nan"))) == {"temperature": r.REASON_NOT_FINITE}
    assert _errors(_rec(temperature="warm")) == {"temperature": r.REASON_BAD_TYPE}


def test_good_or_uncertain_reading_needs_a_pressure() -> None:
    assert _errors(_rec(pressure=_DROP)) == {"pressure": r.REASON_MISSING_FIELD}
    assert _errors(_rec(pressure=None, quality="uncertain")) == {"pressure": r.REASON_MISSING_FIELD}
    assert _errors(_rec(pressure="")) == {"pressure": r.REASON_MISSING_FIELD}


def test_bad_reading_may_have_no_pressure() -> None:
    reading = _ok(_rec(pressure=None, quality="bad"))
    assert (reading.pressure_bar, reading.quality) == (None, Quality.bad)
    assert _ok(_rec(pressure=_DROP, quality="BadSensorFailure")).pressure_bar is None


def test_bad_reading_drops_meaningless_values_instead_of_rejecting() -> None:
    reading = _ok(_rec(pressure=float("nan"), temperature=9999.0, quality="bad"))
    assert (reading.pressure_bar, reading.temperature_c) == (None, None)
    assert _ok(_rec(pressure=1e9, quality="bad")).pressure_bar is None
    # ...but a value that is not a number at all still signals a broken sender.
    assert _errors(_rec(pressure="abc", quality="bad")) == {"pressure": r.REASON_BAD_TYPE}


# ------------------------------------------------------------------------- timestamps
def test_naive_timestamp_rejected() -> None:
    result = _one(_rec(timestamp="2026-11-25T10:00:00"))
    assert result == (
        FieldError("timestamp", "timestamp has no UTC offset", r.REASON_NAIVE_TIMESTAMP),
    )
    assert _errors(_rec(timestamp="2026-11-25")) == {"timestamp": r.REASON_NAIVE_TIMESTAMP}


def test_future_timestamp_rejected_beyond_max_future() -> None:
    assert _ok(_rec(timestamp="2026-11-25T12:05:00Z")).ts == NOW + timedelta(minutes=5)
    assert _errors(_rec(timestamp="2026-11-25T12:05:01Z")) == {
        "timestamp": r.REASON_FUTURE_TIMESTAMP
    }
    strict = ReadingLimits(max_future=timedelta(0))
    assert _errors(_rec(timestamp="2026-11-25T12:00:01Z"), limits=strict) == {
        "timestamp": r.REASON_FUTURE_TIMESTAMP
    }


def test_future_check_applies_to_offset_timestamps() -> None:
    # 13:10+01:00 is 12:10Z: ten minutes ahead.
    assert _errors(_rec(timestamp="2026-11-25T13:10:00+01:00")) == {
        "timestamp": r.REASON_FUTURE_TIMESTAMP
    }


def test_late_and_replayed_data_is_accepted() -> None:
    assert _ok(_rec(timestamp="2020-01-01T00:00:00Z")).ts == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T12:00:00+02:00",
        "2026-11-25T05:00:00-05:00",
        "2026-11-25T10:00:00+00:00",
        "2026-11-25T10:00:00Z",
        "2026-11-25 10:00:00Z",
        " 2026-11-25T10:00:00Z ",
    ],
)
def test_timestamps_normalised_to_utc(text: str) -> None:
    reading = _ok(_rec(timestamp=text))
    assert reading.ts == TS_DT and reading.ts.tzinfo is UTC
    assert reading.ts_epoch_us == 1_795_600_800_000_000


def test_fractional_seconds_keep_microseconds() -> None:
    reading = _ok(_rec(timestamp="2026-11-25T10:00:00.1234567Z"))  # PI sends 7 digits
    assert reading.ts_epoch_us == 1_795_600_800_123_456
    reading = _ok(_rec(timestamp="2026-11-25T10:00:00.999999Z"))
    assert reading.ts_epoch_us == 1_795_600_800_999_999


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1795600800, r.REASON_BAD_TYPE),  # epoch numbers are refused
        (1795600800.5, r.REASON_BAD_TYPE),
        ("1795600800", r.REASON_BAD_TIMESTAMP),
        ("yesterday", r.REASON_BAD_TIMESTAMP),
        ("2026-13-01T00:00:00Z", r.REASON_BAD_TIMESTAMP),
        (None, r.REASON_MISSING_FIELD),
        ("", r.REASON_MISSING_FIELD),
    ],
)
def test_bad_timestamps(value: Any, code: str) -> None:
    assert _errors(_rec(timestamp=value)) == {"timestamp": code}


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _one(_rec(), now=datetime(2026, 11, 25, 12))
    with pytest.raises(ValueError, match="source"):
        _one(_rec(), source="")
    with pytest.raises(ValueError):
        ReadingLimits(pressure_min_bar=10.0, pressure_max_bar=5.0)
    with pytest.raises(ValueError):
        ReadingLimits(max_future=timedelta(seconds=-1))


def test_now_in_another_zone_is_the_same_instant() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert _errors(_rec(timestamp="2026-11-25T12:06:00Z"), now=now) == {
        "timestamp": r.REASON_FUTURE_TIMESTAMP
    }


# ----------------------------------------------------------------------------- annulus
def test_tag_instead_of_annulus_id() -> None:
    assert _ok(_rec(annulus_id=_DROP, tag="W12/ANN-B/PT")).annulus_id == 18
    assert _ok(_rec(annulus_id=_DROP, tag=" W12/ANN-B/PT ")).annulus_id == 18


def test_unknown_tag_and_unknown_annulus() -> None:
    assert _errors(_rec(annulus_id=_DROP, tag="W99/ANN-A/PT")) == {"tag": r.REASON_UNKNOWN_TAG}
    assert _errors(_rec(annulus_id=404)) == {"annulus_id": r.REASON_UNKNOWN_ANNULUS}


def test_missing_annulus() -> None:
    assert _errors(_rec(annulus_id=_DROP)) == {"annulus_id": r.REASON_MISSING_FIELD}
    assert _errors(_rec(annulus_id=None, tag="")) == {"annulus_id": r.REASON_MISSING_FIELD}


def test_annulus_id_and_tag_must_agree() -> None:
    assert _ok(_rec(annulus_id=17, tag="W12/ANN-A/PT")).annulus_id == 17
    assert _errors(_rec(annulus_id=17, tag="W12/ANN-B/PT")) == {"tag": r.REASON_CONFLICTING_ANNULUS}
    assert _errors(_rec(annulus_id=17, tag="nope")) == {"tag": r.REASON_UNKNOWN_TAG}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, r.REASON_OUT_OF_RANGE),
        (-3, r.REASON_OUT_OF_RANGE),
        ("-3", r.REASON_BAD_TYPE),
        (17.0, r.REASON_BAD_TYPE),
        (True, r.REASON_BAD_TYPE),
        ("seventeen", r.REASON_BAD_TYPE),
        ("9" * 30, r.REASON_OUT_OF_RANGE),
        ("1" * 5000, r.REASON_OUT_OF_RANGE),
        ([17], r.REASON_BAD_TYPE),
    ],
)
def test_bad_annulus_ids(value: Any, code: str) -> None:
    assert _errors(_rec(annulus_id=value)) == {"annulus_id": code}


def test_annulus_id_from_string() -> None:
    assert _ok(_rec(annulus_id=" 17 ")).annulus_id == 17


def test_tag_must_be_a_string() -> None:
    assert _errors(_rec(annulus_id=_DROP, tag=17)) == {"tag": r.REASON_BAD_TYPE}


def test_tags_are_resolved_once_per_request() -> None:
    calls: list[str] = []

    def resolve(tag: str) -> int | None:
        calls.append(tag)
        return TAGS.get(tag)

    records = [
        {"tag": "W12/ANN-A/PT", "timestamp": f"2026-11-25T10:00:0{i}Z", "pressure": 1.0}
        for i in range(5)
    ]
    assert len(_batch(records, resolve_tag=resolve).accepted) == 5
    assert calls == ["W12/ANN-A/PT"]


# -------------------------------------------------------------------- record shape
@pytest.mark.parametrize("record", [[1, 2], "a string", None, 42])
def test_record_not_an_object(record: Any) -> None:
    assert _errors(record) == {"record": r.REASON_NOT_AN_OBJECT}


def test_all_errors_of_a_record_are_reported() -> None:
    result = _one(
        {
            "timestamp": "2026-11-25T10:00:00",
            "pressure": "nan",
            "quality": "meh",
            "temperature_unit": "K",
        }
    )
    assert isinstance(result, tuple)
    assert [(e.field, e.code) for e in result] == [
        ("annulus_id", r.REASON_MISSING_FIELD),
        ("timestamp", r.REASON_NAIVE_TIMESTAMP),
        ("quality", r.REASON_BAD_QUALITY),
        ("pressure", r.REASON_NOT_FINITE),
        ("temperature_unit", r.REASON_BAD_UNIT),
    ]
    assert all(e.reason for e in result)


def test_field_error_code_defaults_to_invalid() -> None:
    assert FieldError("pressure", "why").code == r.REASON_INVALID


# ----------------------------------------------------------------------------- batches
def test_mixed_batch_keeps_good_records_with_right_indexes() -> None:
    records = [
        _rec(timestamp="2026-11-25T10:00:00Z"),
        _rec(pressure=float("nan"), timestamp="2026-11-25T10:00:09Z"),
        "garbage",
        _rec(timestamp="2026-11-25T10:00:01Z", annulus_id=18),
        _rec(annulus_id=404),
        {"tag": "W12/ANN-B/PT", "timestamp": "2026-11-25T10:00:05Z", "pressure": "12.5"},
    ]
    result = _batch(records)
    assert [(x.annulus_id, x.ts.second) for x in result.accepted] == [(17, 0), (18, 1), (18, 5)]
    assert [x.index for x in result.rejected] == [1, 2, 4]
    assert result.rejected[1].record == "garbage"
    assert result.rejected[2].errors[0].code == r.REASON_UNKNOWN_ANNULUS
    assert result.reason_counts() == {
        r.REASON_NOT_FINITE: 1,
        r.REASON_NOT_AN_OBJECT: 1,
        r.REASON_UNKNOWN_ANNULUS: 1,
    }


def test_duplicates_within_a_request() -> None:
    records = [
        _rec(pressure=1.0),
        _rec(annulus_id=18),
        _rec(pressure=2.0),  # same annulus and instant as record 0
        {
            "tag": "W12/ANN-A/PT",
            "timestamp": "2026-11-25T11:00:00+01:00",
            "pressure": 3.0,
        },  # same again
    ]
    result = _batch(records)
    assert [x.pressure_bar for x in result.accepted] == [1.0, 100.0]
    assert [x.index for x in result.rejected] == [2, 3]
    for rejection in result.rejected:
        assert rejection.errors == (
            FieldError("timestamp", "duplicate of record 0 in this request", r.REASON_DUPLICATE),
        )


def test_duplicate_of_a_rejected_record_is_not_a_duplicate() -> None:
    result = _batch([_rec(pressure="abc"), _rec(pressure=5.0)])
    assert [x.index for x in result.rejected] == [0]
    assert [x.pressure_bar for x in result.accepted] == [5.0]


def test_duplicate_reported_alongside_other_errors() -> None:
    result = _batch([_rec(), _rec(pressure="abc")])
    (rejection,) = result.rejected
    assert [e.code for e in rejection.errors] == [r.REASON_BAD_TYPE, r.REASON_DUPLICATE]


def test_batch_accepts_a_generator_and_empty_input() -> None:
    assert _batch(iter([])).accepted == []
    result = _batch(_rec(timestamp=f"2026-11-25T10:00:{s:02d}Z") for s in range(60))
    assert len(result.accepted) == 60 and not result.rejected


def test_timestamp_cache_does_not_leak_between_requests() -> None:
    ts = "2026-11-25T12:04:00Z"
    assert _ok(_rec(timestamp=ts)).ts.minute == 4
    assert _errors(_rec(timestamp=ts), now=NOW - timedelta(minutes=10)) == {
        "timestamp": r.REASON_FUTURE_TIMESTAMP
    }


def test_shared_timestamps_in_a_request() -> None:
    records = [_rec(annulus_id=a, timestamp=TS) for a in (17, 18, 19)] + [
        _rec(annulus_id=18, timestamp="bad")
    ] * 2
    result = _batch(records)
    assert [x.annulus_id for x in result.accepted] == [17, 18, 19]
    assert all(x.ts is result.accepted[0].ts for x in result.accepted)
    assert [x.index for x in result.rejected] == [3, 4]


# ------------------------------------------------------------------------- reading ids
def test_reading_id_is_uuid5_over_annulus_timestamp_source() -> None:
    reading = _ok(_rec())
    expected = uuid.uuid5(READING_NAMESPACE, f"17|{reading.ts_epoch_us}|pi-north")
    assert reading.reading_id == expected
    assert reading.reading_id.version == 5
    assert reading_id(17, reading.ts_epoch_us, "pi-north") == expected
    # Pinned: changing the namespace or the name format would duplicate every replayed row.
    assert str(READING_NAMESPACE) == "1e388280-398e-516d-8c90-f939c8be946d"
    assert str(reading.reading_id) == str(
        uuid.uuid5(READING_NAMESPACE, "17|1795600800000000|pi-north")
    )


def test_reading_id_is_stable_across_requests_and_spellings() -> None:
    a = _ok(_rec(pressure=1.0, timestamp="2026-11-25T10:00:00Z"))
    b = _ok(
        {
            "tag": "W12/ANN-A/PT",
            "timestamp": "2026-11-25T11:00:00+01:00",
            "pressure": "2.0",
            "quality": "bad",
        }
    )
    assert a.reading_id == b.reading_id


def test_reading_id_is_distinct_by_source_annulus_and_time() -> None:
    base = _ok(_rec())
    assert _ok(_rec(), source="opc-south").reading_id != base.reading_id
    assert _ok(_rec(annulus_id=18)).reading_id != base.reading_id
    assert _ok(_rec(timestamp="2026-11-25T10:00:00.000001Z")).reading_id != base.reading_id


def test_fast_uuid_behaves_like_a_normal_uuid() -> None:
    rid = _ok(_rec()).reading_id
    assert type(rid) is uuid.UUID
    assert pickle.loads(pickle.dumps(rid)) == rid
    assert uuid.UUID(str(rid)) == rid and hash(uuid.UUID(str(rid))) == hash(rid)
    assert rid.is_safe is uuid.SafeUUID.unknown


@given(
    annulus_id=st.integers(min_value=1, max_value=2**63 - 1),
    ts_us=st.integers(min_value=-(2**62), max_value=2**62),
    source=st.text(min_size=1, max_size=40),
)
def test_reading_id_matches_uuid5(annulus_id: int, ts_us: int, source: str) -> None:
    assert reading_id(annulus_id, ts_us, source) == uuid.uuid5(
        READING_NAMESPACE, f"{annulus_id}|{ts_us}|{source}"
    )


@given(
    ts=st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2026, 11, 25, 12),
        timezones=st.just(UTC),
    ),
    source=st.text(min_size=1, max_size=20),
)
def test_batch_reading_id_matches_uuid5(ts: datetime, source: str) -> None:
    reading = _ok(_rec(timestamp=ts.isoformat()), source=source)
    assert reading.ts == ts
    assert reading.reading_id == uuid.uuid5(READING_NAMESPACE, f"17|{reading.ts_epoch_us}|{source}")


# --------------------------------------------------------------------------------- CSV
CSV_HEADER = (
    "annulus_id,tag,timestamp,pressure,pressure_unit,temperature,temperature_unit,quality\n"
)


def _lines(*rows: str) -> list[str]:
    return [CSV_HEADER, *(row + "\n" for row in rows)]


def test_csv_values_are_parsed_from_strings() -> None:
    lines = _lines(
        "17,,2026-11-25T10:00:00Z,1000,psi,212,degF,good",
        ",W12/ANN-B/PT,2026-11-25T10:00:00Z,12.5,,,,",
        "19,,2026-11-25T10:00:00Z,Bad Input,,,,",
        "18,,2026-11-25T10:00:01Z,,,,,bad",
        '17,,2026-11-25T10:00:02Z," 7.5 ",,,,',
    )
    records = list(iter_csv_records(lines))
    assert records[0]["pressure"] == "1000"
    result = _batch(records)
    assert not result.rejected
    first, second, third, fourth, fifth = result.accepted
    assert first.pressure_bar == pytest.approx(
        68.9476, abs=1e-4
    ) and first.temperature_c == pytest.approx(100.0)
    assert (second.annulus_id, second.pressure_bar, second.temperature_c, second.quality) == (
        18,
        12.5,
        None,
        Quality.good,
    )
    assert (third.pressure_bar, third.quality) == (None, Quality.bad)
    assert (fourth.pressure_bar, fourth.quality) == (None, Quality.bad)
    assert fifth.pressure_bar == 7.5


def test_csv_header_minimal_and_tolerant() -> None:
    lines = [
        "\ufeff Tag , TIMESTAMP,Pressure\r\n",
        "W12/ANN-A/PT,2026-11-25T10:00:00Z,3\r\n",
        "\r\n",
    ]
    (record,) = iter_csv_records(lines)
    assert record == {"tag": "W12/ANN-A/PT", "timestamp": "2026-11-25T10:00:00Z", "pressure": "3"}


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("annulus_id,pressure\n", "timestamp"),
        ("annulus_id,timestamp\n", "pressure"),
        ("timestamp,pressure,quality\n", "annulus_id or tag"),
    ],
)
def test_csv_header_errors(header: str, missing: str) -> None:
    with pytest.raises(ValueError, match=f"lacks {missing}"):
        list(iter_csv_records([header, "1,2\n"]))


def test_csv_empty_and_repeated_header() -> None:
    with pytest.raises(ValueError, match="header row is required"):
        list(iter_csv_records([]))
    with pytest.raises(ValueError, match="header row is required"):
        list(iter_csv_records(["\n", "\n"]))
    with pytest.raises(ValueError, match="repeats"):
        list(iter_csv_records(["annulus_id,timestamp,pressure,pressure\n"]))


def test_csv_wrong_column_counts_fail_validation_not_the_stream() -> None:
    lines = _lines(
        "17,,2026-11-25T10:00:00Z,1.0,,,,",
        "17,,2026-11-25T10:00:01Z,1.0",
        "17,,2026-11-25T10:00:02Z,1.0,,,,,extra",
        "18,,2026-11-25T10:00:03Z,2.0,,,,",
    )
    records = list(iter_csv_records(lines))
    assert isinstance(records[1], MalformedCsvRow) and isinstance(records[1], dict)
    result = _batch(records)
    assert [(x.annulus_id, x.ts.second) for x in result.accepted] == [(17, 0), (18, 3)]
    assert [x.index for x in result.rejected] == [1, 2]
    short, long = (x.errors[0] for x in result.rejected)
    assert (short.field, short.code) == ("record", r.REASON_MALFORMED_ROW)
    assert short.reason == "CSV line 3 has 4 fields, the header has 8"
    assert long.reason == "CSV line 4 has 9 fields, the header has 8"


def test_csv_quoted_fields() -> None:
    lines = [
        "tag,timestamp,pressure,note\n",
        '"W12/ANN-A/PT","2026-11-25T10:00:00Z","1.5","a, b"\n',
    ]
    (record,) = iter_csv_records(lines)
    assert record["note"] == "a, b" and _ok(record).pressure_bar == 1.5


def test_csv_is_streamed() -> None:
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        yield CSV_HEADER
        for second in range(10**6):  # far more than we will read
            consumed += 1
            yield f"17,,2026-11-25T10:{second // 60 % 60:02d}:{second % 60:02d}Z,1.0,,,,\n"

    stream = iter_csv_records(lines())
    first = next(stream)
    assert first["annulus_id"] == "17"
    assert consumed == 1
    for _ in range(99):
        next(stream)
    assert consumed == 100


def test_csv_tokenizer_error_becomes_value_error() -> None:
    runaway = ["annulus_id,timestamp,pressure\n", '17,"2026-11-25T10:00:00Z' + "x" * 200_000 + "\n"]
    with pytest.raises(ValueError, match="CSV line"):
        list(iter_csv_records(runaway))


@pytest.mark.parametrize("value", ["good\x00x", "Bad\x00", "GoodNoData\x07", "uncertain\x1b[0m"])
def test_a_quality_with_a_control_character_is_not_recognised(value: str) -> None:
    assert normalise_quality(value) is None
    assert normalise_quality({"Symbol": value}) is None
    assert _errors(_rec(quality=value)) == {"quality": r.REASON_BAD_QUALITY}


@pytest.mark.parametrize("suffix", ["\x00", "\x00junk", "\x00+05:00"])
def test_a_timestamp_with_a_nul_is_refused_not_cut_short(suffix: str) -> None:
    # CPython's datetime.fromisoformat stops at a NUL: "...Z\x00junk" parses as "...Z".
    assert _errors(_rec(timestamp="2026-11-25T10:00:00Z" + suffix)) == {
        "timestamp": r.REASON_BAD_TIMESTAMP
    }
