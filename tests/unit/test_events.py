"""Event contracts: ids, versions, the discriminated union and errors on bad messages."""

from datetime import UTC, datetime

import pydantic
import pytest

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import ElementStatus, ElementType, EnvelopeType, TestResult, TestType

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_every_event_carries_an_id_and_a_schema_version() -> None:
    reading = ev.Reading(annulus_id=1, ts=NOW, pressure_bar=1.0, source="s")
    assert reading.schema_version == ev.SCHEMA_VERSION
    assert (
        reading.event_id != ev.Reading(annulus_id=1, ts=NOW, pressure_bar=1.0, source="s").event_id
    )


def test_events_are_frozen() -> None:
    reading = ev.Reading(annulus_id=1, ts=NOW, pressure_bar=1.0, source="s")
    with pytest.raises(pydantic.ValidationError):
        reading.pressure_bar = 2.0  # type: ignore[misc]


def test_derived_ids_are_stable_and_distinct() -> None:
    assert ev.derived_id(17, "2026-11-25T10:00:00Z", "pi") == ev.derived_id(
        17, "2026-11-25T10:00:00Z", "pi"
    )
    assert ev.derived_id(17, "2026-11-25T10:00:00Z", "pi") != ev.derived_id(
        17, "2026-11-25T10:00:00Z", "opc"
    )


def test_barrier_topic_decodes_each_event_type_by_discriminator() -> None:
    common = dict(
        well_id=2,
        barrier_element_id=5,
        element_name="SSSV",
        element_type=ElementType.sssv,
        envelope_type=EnvelopeType.primary,
    )
    changed = ev.ElementStatusChanged(
        **common, old_status=ElementStatus.ok, new_status=ElementStatus.failed, ts=NOW
    )
    tested = ev.BarrierTestRecorded(
        **common, test_id=1, test_type=TestType.inflow, result=TestResult.failed, test_date=NOW
    )
    assert isinstance(
        ev.decode(topics.BARRIER_EVENTS.name, changed.encode()), ev.ElementStatusChanged
    )
    assert ev.decode(topics.BARRIER_EVENTS.name, tested.encode()) == tested


def test_a_bad_message_raises_a_validation_error_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="annulus_id"):
        ev.decode(
            topics.READINGS.name,
            b'{"event_type": "reading", "ts": "2026-11-25T10:00:00Z", "source": "s"}',
        )
    with pytest.raises(pydantic.ValidationError):
        ev.decode(topics.READINGS.name, b"not json")


def test_additive_fields_from_a_newer_producer_are_ignored() -> None:
    payload = ev.Reading(annulus_id=1, ts=NOW, pressure_bar=1.0, source="s").model_dump(mode="json")
    payload["future_field"] = 42
    import orjson

    assert ev.decode(topics.READINGS.name, orjson.dumps(payload)).annulus_id == 1


def test_catalogue_names_every_topic_once_with_compacted_config_topics() -> None:
    names = [t.name for t in topics.ALL_TOPICS]
    assert len(names) == len(set(names)) == 11
    assert {t.name for t in topics.ALL_TOPICS if t.compacted} == {
        "wims.annulus-config",
        "wims.well-config",
    }
