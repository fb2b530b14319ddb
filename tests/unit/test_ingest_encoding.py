"""The ingest service's hand-built Kafka values are the event contract, byte for byte."""

from datetime import UTC, datetime

from services.ingest.core import copy_line
from services.ingest.publisher import partition_of
from shared.contracts.enums import Quality
from shared.contracts.events import Reading, decode
from shared.contracts.readings import encode_reading
from shared.domain.readings import validate_batch

NOW = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 25, 10, 5, 1, 123456, tzinfo=UTC)


def _normalised(records: list[dict]):
    result = validate_batch(
        records,
        source="pi-north",
        now=NOW,
        resolve_tag=lambda t: None,
        annulus_exists=lambda a: True,
    )
    assert not result.rejected
    return result.accepted


def test_encode_reading_decodes_to_the_model_pydantic_builds() -> None:
    readings = _normalised(
        [
            {
                "annulus_id": 17,
                "timestamp": "2026-11-25T10:00:00Z",
                "pressure": 1000,
                "pressure_unit": "psi",
                "temperature": 212,
                "temperature_unit": "degF",
            },
            {"annulus_id": 18, "timestamp": "2026-11-25T10:00:00.250+02:00", "pressure": 12.5},
            {"annulus_id": 19, "timestamp": "2026-11-25T10:00:00Z", "pressure": "Bad Input"},
        ]
    )
    for reading, well_id in zip(readings, (3, None, 4), strict=True):
        value = encode_reading(reading, well_id, RECEIVED)
        model = Reading(
            event_id=reading.reading_id,
            annulus_id=reading.annulus_id,
            well_id=well_id,
            ts=reading.ts,
            pressure_bar=reading.pressure_bar,
            temperature_c=reading.temperature_c,
            quality=reading.quality,
            source=reading.source,
            received_at=RECEIVED,
        )
        assert decode("wims.readings", value) == model
        assert value == model.encode()
    first = decode("wims.readings", encode_reading(readings[0], 3, RECEIVED))
    assert abs(first.pressure_bar - 68.9476) < 1e-4 and abs(first.temperature_c - 100.0) < 1e-9
    assert decode("wims.readings", encode_reading(readings[2], 4, RECEIVED)).quality == Quality.bad


def test_partition_matches_kafkas_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    parts = list(range(6))
    for aid in (1, 2, 17, 123456):
        key = str(aid).encode()
        assert parts[partition_of(key, 6)] == DefaultPartitioner()(key, parts, parts)


def test_sink_copy_line_round_trips_a_reading_and_refuses_garbage() -> None:
    (reading,) = _normalised(
        [{"annulus_id": 5, "timestamp": "2026-11-25T10:00:00Z", "pressure": "I/O Timeout"}]
    )
    line = copy_line(encode_reading(reading, 1, RECEIVED))
    fields = line.rstrip("\n").split("\t")
    assert fields[0] == str(reading.reading_id)
    assert fields[1:4] == ["5", "2026-11-25T10:00:00+00:00", "pi-north"]
    assert fields[4:7] == ["\\N", "\\N", "bad"]
    for garbage in (b"not json", b"[]", b'{"event_type": "reading"}', b'{"event_type": "alert"}'):
        try:
            copy_line(garbage)
        except ValueError:
            continue
        raise AssertionError(f"{garbage!r} was accepted")
