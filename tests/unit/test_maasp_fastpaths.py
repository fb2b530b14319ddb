"""The MAASP worker's batch fast paths equal the per-message / per-annulus code they speed
up: timestamps, decoding, SAP stepping and judging (same values, same event bytes)."""

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from services.maasp.config import evaluate_config
from services.maasp.core import JudgeParams, encode_state, judge_annulus, judge_batch
from shared.contracts import events as ev
from shared.contracts.readings import _decode_one, concat_batches, decode_readings, iso_epochs
from shared.domain.sap import DEFAULT_SAP_PARAMS, SapParams, SapState, sap_step, sap_step_many
from tests.unit.test_maasp_service import config


def _epoch_of(stamp: str) -> float | None:
    try:
        dt = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


_DATETIMES = hs.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=hs.just(None)
)


@settings(max_examples=300, deadline=None)
@given(
    hs.lists(
        hs.tuples(
            _DATETIMES,
            hs.integers(-1439, 1439),
            hs.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
            hs.sampled_from(["offset", "naive", "Z", "space"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_fast_timestamps_equal_fromisoformat(cases) -> None:
    stamps = []
    for naive, minutes, spec, form in cases:
        dt = naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
        if form == "naive":
            text = naive.isoformat(timespec=spec)
        elif form == "Z":
            text = naive.isoformat(timespec=spec) + "Z"
        elif form == "space":
            text = dt.isoformat(sep=" ", timespec=spec)
        else:
            text = dt.isoformat(timespec=spec)
        stamps.append(text)
    got = iso_epochs(stamps).tolist()
    for text, value in zip(stamps, got, strict=True):
        if not math.isnan(value):  # NaN: not a fast layout, fromisoformat decides
            assert value == _epoch_of(text), text
    # Our own layouts always take the fast path.
    ours = [s for s in stamps if len(s) in (25, 32) and s[10] == "T"]
    assert not np.isnan(iso_epochs(ours)).any() or any(
        abs(_epoch_of(s) or 0) > 2**53 / 1e6 for s in ours
    )


@given(hs.lists(hs.text(alphabet="0123456789-+:TZ. x\u00e9", max_size=34), max_size=30))
def test_fast_timestamps_never_accept_what_fromisoformat_reads_otherwise(stamps) -> None:
    for text, value in zip(stamps, iso_epochs(stamps).tolist(), strict=True):
        if not math.isnan(value):
            assert value == _epoch_of(text), text


def test_fast_timestamps_reject_impossible_dates() -> None:
    bad = [
        "2026-02-29T00:00:00+00:00",
        "2026-13-01T00:00:00+00:00",
        "2026-01-01T24:00:00+00:00",
        "2026-01-01T00:60:00+00:00",
        "2026-01-01T00:00:60+00:00",
        "2026-01-01T00:00:00+24:00",
        "0000-01-01T00:00:00+00:00",
        "2026-01-01T00:00:00*00:00",
    ]
    assert np.isnan(iso_epochs(bad)).all()
    assert math.isnan(iso_epochs(["2024-02-29T12:00:00.5+00:00"])[0])  # 1 digit: not ours
    assert iso_epochs(["2024-02-29T23:59:59.999999-01:30"]).tolist() == [
        _epoch_of("2024-02-29T23:59:59.999999-01:30")
    ]


_READING = {
    "event_id": "743f8204-e45e-516c-96cd-02a9e87b5edf",
    "schema_version": 1,
    "event_type": "reading",
    "annulus_id": 7,
    "well_id": 3,
    "ts": "2026-03-01T00:00:00.250000+00:00",
    "pressure_bar": 12.5,
    "temperature_c": 40.0,
    "quality": "good",
    "source": "scada",
    "received_at": "2026-03-01T00:00:01+00:00",
}
_ODD_VALUES = {
    "annulus_id": [7, 8, True, 7.0, "7", None, 2**70],
    "well_id": [3, None, True, 3.5, "3", 2**70],
    "ts": [
        "2026-03-01T00:00:00+00:00",
        "2026-03-01T00:00:00.123+01:00",
        "2026-03-01T00:00:00Z",
        "2026-03-01 00:00:00",
        "2026-03-01",
        "not a time",
        17,
        "2026-02-30T00:00:00+00:00",
    ],
    "pressure_bar": [12.5, 0, 13, None, "13.5", "high", True, -0.0, 1e308, 2**70],
    "temperature_c": [40.0, None, 41, "x", False],
    "quality": ["good", "uncertain", "bad", "worst", None, 1],
    "source": ["scada", "", None, 5],
    "event_type": ["reading", "other", None],
}


@settings(max_examples=200, deadline=None)
@given(
    hs.lists(
        hs.one_of(
            hs.dictionaries(
                hs.sampled_from(sorted(_ODD_VALUES)),
                hs.integers(0, 9),
                max_size=3,
            ).map(lambda changes: ("json", changes)),
            hs.sampled_from([None, b"", b"\x00garbage", b"[1,2]", b'"text"', b"{}"]).map(
                lambda raw: ("raw", raw)
            ),
            hs.sampled_from(sorted(_ODD_VALUES)).map(lambda k: ("drop", k)),
        ),
        max_size=25,
    )
)
def test_batch_decode_equals_the_per_message_path(specs) -> None:
    values: list[bytes | None] = []
    for kind, spec in specs:
        if kind == "raw":
            values.append(spec)
            continue
        doc = dict(_READING)
        if kind == "drop":
            doc.pop(spec)
        else:
            for k, j in spec.items():
                options = _ODD_VALUES[k]
                doc[k] = options[j % len(options)]
        values.append(json.dumps(doc).encode())  # json: integers beyond 64 bits too
    batch, errors = decode_readings(values)
    want_rows, want_errors = [], []
    for i, raw in enumerate(values):
        try:
            want_rows.append((i, *_decode_one(raw)))
        except Exception:
            want_errors.append(i)
    assert [i for i, _ in errors] == want_errors
    got_rows = list(
        zip(
            batch.index.tolist(),
            batch.annulus_id.tolist(),
            batch.well_id.tolist(),
            batch.ts.tolist(),
            batch.pressure.tolist(),
            batch.temperature.tolist(),
            batch.quality.tolist(),
            strict=True,
        )
    )
    # repr: NaN equals NaN, and -0.0 differs from 0.0.
    assert [repr(r) for r in got_rows] == [repr(r) for r in want_rows]


@pytest.mark.parametrize("slice_size", [1, 3, 7, 1000])
def test_a_batch_decoded_in_slices_equals_it_decoded_whole(slice_size: int) -> None:
    # The worker decodes a batch slice by slice as it is fetched: same readings, same
    # positions, same bad messages at the same positions.
    values: list[bytes | None] = []
    for i in range(40):
        doc = dict(_READING, annulus_id=i % 6 + 1, pressure_bar=10.0 + i)
        values.append(json.dumps(doc).encode())
        if i % 9 == 4:
            values.append(b"\x00garbage")
        if i % 13 == 5:
            values.append(json.dumps(dict(doc, ts="not a time")).encode())
    whole, whole_errors = decode_readings(values)
    parts, errors = [], []
    for start in range(0, len(values), slice_size):
        part, part_errors = decode_readings(values[start : start + slice_size])
        parts.append((part, start))
        errors += [(start + i, e) for i, e in part_errors]
    sliced = concat_batches(parts)
    assert errors == whole_errors and len(errors) == 7
    for name in ("index", "annulus_id", "well_id", "ts", "pressure", "temperature", "quality"):
        np.testing.assert_array_equal(getattr(sliced, name), getattr(whole, name), err_msg=name)


def _random_sap_batches(seed: int, params: SapParams) -> None:
    rng = np.random.default_rng(seed)
    g_n = 40
    states = [SapState() for _ in range(g_n)]
    clock = 1.7e9 + rng.uniform(0, 3600, g_n)
    level = rng.uniform(0, 80, g_n)
    for _ in range(int(rng.integers(3, 20))):
        parts, starts, ends, pos = [], [], [], 0
        for g in range(g_n):
            n = int(rng.integers(0, 40))
            ts = clock[g] + np.cumsum(rng.choice([0.5, 1, 10, 60, 900]) * rng.uniform(0.5, 1.5, n))
            if n and rng.random() < 0.05:
                ts[int(rng.integers(0, n))] -= 1000  # out of order
            if n:
                clock[g] = ts.max()
            steps = rng.normal(0, rng.choice([0.5, 3, 20]), n)
            if n and rng.random() < 0.1:
                steps[n // 2] = -0.9 * level[g]  # a bleed
            p = np.clip(level[g] + np.cumsum(steps), -1, 200)
            if n:
                level[g] = p[-1]
                if rng.random() < 0.03:
                    p[0] = 0.0
            parts.append((ts, p, rng.uniform(30, 60, n), rng.random(n) > 0.05))
            starts.append(pos)
            pos += n
            ends.append(pos)
        ts, p, temp, good = (np.concatenate([x[k] for x in parts]) for k in range(4))
        got = sap_step_many(states, np.array(starts), np.array(ends), ts, p, temp, good, params)
        for g in range(g_n):
            s, e = starts[g], ends[g]
            want = sap_step(states[g], ts[s:e], p[s:e], temp[s:e], good[s:e], params)
            assert orjson.dumps(got[g][0]) == orjson.dumps(want[0])
            assert [f.to_dict() for f in got[g][1]] == [f.to_dict() for f in want[1]]
            states[g] = want[0]


@settings(max_examples=25, deadline=None)
@given(hs.integers(0, 2**32 - 1))
def test_sap_step_many_equals_sap_step_per_annulus(seed: int) -> None:
    _random_sap_batches(seed, DEFAULT_SAP_PARAMS)
    # Short windows: bucket changes, bleeds and diagnostic raises inside a batch.
    _random_sap_batches(
        seed,
        SapParams(
            smoothing_tau_s=5.0,
            bleed_max_duration_s=600.0,
            diagnostic_smoothing_tau_s=20.0,
            diagnostic_sustain_s=300.0,
        ),
    )


def test_sap_step_many_steps_the_common_case_together(monkeypatch) -> None:
    """An idle detector with steady readings is stepped in lockstep, not by sap_step."""
    import shared.domain.sap as sap

    calls = []
    monkeypatch.setattr(sap, "sap_step", lambda *a: calls.append(1) or sap_step(*a))
    g_n, n = 30, 20
    ts = np.tile(1.7e9 + np.arange(n, dtype=np.float64), g_n)
    p = np.repeat(np.linspace(20, 80, g_n), n) + np.tile(np.sin(np.arange(n)), g_n)
    starts = np.arange(g_n) * n
    out = sap.sap_step_many(
        [SapState()] * g_n,
        starts,
        starts + n,
        ts,
        p,
        np.full(g_n * n, 40.0),
        np.ones(g_n * n, bool),
        DEFAULT_SAP_PARAMS,
    )
    assert calls == []
    for g in range(g_n):
        s = slice(g * n, (g + 1) * n)
        want = sap_step(
            SapState(), ts[s], p[s], np.full(n, 40.0), np.ones(n, bool), DEFAULT_SAP_PARAMS
        )
        assert out[g][0] == want[0]


def _same(a, b) -> bool:
    def emits(o):
        return [(e.topic, e.key, e.value, e.label, e.ts) for e in o.emits]

    return (
        orjson.dumps(a.state) == orjson.dumps(b.state)
        and (a.late, a.unconfigured, a.level_counts) == (b.late, b.unconfigured, b.level_counts)
        and emits(a) == emits(b)
    )


@settings(max_examples=30, deadline=None)
@given(hs.integers(0, 2**32 - 1), hs.sampled_from([5.0, 30.0]))
def test_judge_batch_equals_judge_annulus(seed: int, heartbeat_s: float) -> None:
    """Random annuli (some unconfigured, deleted, gas-lifted, custom thresholds) over
    several batches with late, bad and missing readings: the same outcome per annulus."""
    params = JudgeParams(heartbeat_s=heartbeat_s)
    rng = np.random.default_rng(seed)
    g_n = 30
    kinds = [
        None,
        evaluate_config(config(deleted=True)),
        evaluate_config(config(imposed_pressure=True)),
        evaluate_config(config(warning_threshold=0.5, exceeded_threshold=0.7, clear_band=0.1)),
        evaluate_config(config()),
    ]
    cfgs = [kinds[int(rng.choice(5, p=[0.1, 0.05, 0.1, 0.05, 0.7]))] for _ in range(g_n)]
    states: list = [None] * g_n
    clock = 1.7e9 + rng.uniform(0, 3600, g_n)
    level = rng.uniform(0, 130, g_n)
    for _ in range(int(rng.integers(2, 10))):
        parts, starts, ends, pos = [], [], [], 0
        for g in range(g_n):
            n = int(rng.integers(1, 30))
            ts = clock[g] + np.cumsum(rng.choice([0.5, 1, 7, 60]) * rng.uniform(0.5, 1.5, n))
            if rng.random() < 0.05:
                ts[int(rng.integers(0, n))] -= 100  # a replay
            clock[g] = ts.max()
            p = np.clip(level[g] + np.cumsum(rng.normal(0, rng.choice([0.3, 2, 15]), n)), 0, 200)
            level[g] = p[-1]
            if rng.random() < 0.05:
                p[int(rng.integers(0, n))] = np.nan
            q = np.where(rng.random(n) < 0.03, 2, np.where(rng.random(n) < 0.05, 1, 0))
            wells = np.full(n, 3 if rng.random() > 0.1 else -1)
            parts.append((ts, p, rng.uniform(30, 60, n), q.astype(np.int8), wells))
            starts.append(pos)
            pos += n
            ends.append(pos)
        cols = [np.concatenate([x[k] for x in parts]) for k in range(5)]
        got = judge_batch(
            list(range(g_n)), np.array(starts), np.array(ends), *cols, states, cfgs, params
        )
        for g in range(g_n):
            s, e = starts[g], ends[g]
            want = judge_annulus(g, *(c[s:e] for c in cols), states[g], cfgs[g], params)
            assert _same(got[g], want), g
            # As recovered from the changelog now and then, as the worker does after a restart.
            states[g] = orjson.loads(encode_state(want.state)) if rng.random() < 0.3 else want.state


def test_judge_batch_emits_the_same_event_ids_as_before() -> None:
    ramp = np.array([50 + 90 * i / 39 for i in range(40)] + [135.0] * 10 + [2.0, 2.5])
    n = ramp.size
    ts = datetime(2026, 3, 1, tzinfo=UTC).timestamp() + 60.0 * np.arange(n)
    cfg = evaluate_config(config())
    args = (ts, ramp, np.full(n, 40.0), np.zeros(n, np.int8), np.full(n, 3))
    (got,) = judge_batch([7], np.array([0]), np.array([n]), *args, [None], [cfg], JudgeParams())
    want = judge_annulus(7, *args, None, cfg, JudgeParams())
    assert [ev.decode(e.topic, e.value).event_id for e in got.emits] == [
        ev.decode(e.topic, e.value).event_id for e in want.emits
    ]
    assert len(got.emits) > 3
