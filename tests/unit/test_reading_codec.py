"""The readings codec is the Reading contract, in both directions, for any reading."""

import math
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contracts.enums import Quality
from shared.contracts.events import Reading, decode
from shared.contracts.readings import (
    NO_WELL,
    QUALITY_CODES,
    decode_readings,
    encode_reading,
)
from shared.domain.readings import NormalisedReading

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
values = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))
readings = st.builds(
    lambda aid, us, p, t, q, src, rid: NormalisedReading(
        annulus_id=aid,
        ts=EPOCH + timedelta(microseconds=us),
        ts_epoch_us=us,
        pressure_bar=p,
        temperature_c=t,
        quality=q,
        source=src,
        reading_id=rid,
    ),
    st.integers(1, 2**63 - 1),
    st.integers(0, 4_000_000_000 * 1_000_000),
    values,
    values,
    st.sampled_from(list(Quality)),
    st.text(min_size=1, max_size=20),
    st.uuids(),
)
wells = st.one_of(st.none(), st.integers(1, 2**63 - 1))


def _model(r: NormalisedReading, well_id: int | None, received_at: datetime) -> Reading:
    return Reading(
        event_id=r.reading_id,
        annulus_id=r.annulus_id,
        well_id=well_id,
        ts=r.ts,
        pressure_bar=r.pressure_bar,
        temperature_c=r.temperature_c,
        quality=r.quality,
        source=r.source,
        received_at=received_at,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(readings, wells), min_size=1, max_size=8))
def test_any_reading_encodes_as_the_model_and_decodes_to_its_values(batch) -> None:
    received = datetime(2026, 11, 25, 10, 5, 1, 123456, tzinfo=UTC)
    raw = [encode_reading(r, w, received) for r, w in batch]
    for value, (r, w) in zip(raw, batch, strict=True):
        model = _model(r, w, received)
        assert value == model.encode()
        assert decode("wims.readings", value) == model
    decoded, errors = decode_readings(raw)
    assert errors == []
    assert decoded.index.tolist() == list(range(len(batch)))
    for i, (r, w) in enumerate(batch):
        assert decoded.annulus_id[i] == r.annulus_id
        assert decoded.well_id[i] == (NO_WELL if w is None else w)
        assert decoded.ts[i] == r.ts.timestamp()
        for got, want in (
            (decoded.pressure[i], r.pressure_bar),
            (decoded.temperature[i], r.temperature_c),
        ):
            assert math.isnan(got) if want is None else got == want
        assert decoded.quality[i] == QUALITY_CODES[r.quality.value]


def test_a_message_the_contract_refuses_is_named_with_its_field() -> None:
    good = encode_reading(
        NormalisedReading(7, EPOCH, 0, 1.0, None, Quality.good, "s", uuid.uuid4()), None, EPOCH
    )
    bad = good.replace(b'"annulus_id":7', b'"annulus_id":"seven"')
    decoded, errors = decode_readings([good, bad])
    assert decoded.index.tolist() == [0]
    assert [i for i, _ in errors] == [1] and "annulus_id" in errors[0][1]
