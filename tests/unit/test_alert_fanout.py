"""The live alert fan-out's bookkeeping (services/api/alert_feed.py, driven here through
services/api/pump.py's AlertFanout) without a broker: what each stream gets on a resume, from
the replay buffer, when it falls behind, and which ids it is given. The Kafka side is tested
in tests/integration/test_api_sse_scale.py."""

from datetime import UTC, datetime

import orjson
import pytest

from services.api.alert_feed import MAX_OFFSET, StreamRefused, Subscriber, parse_position
from services.api.pump import AlertFanout
from shared.contracts import events as ev
from shared.contracts.enums import AlertKind, Severity
from shared.infrastructure.settings import Settings


def make_fanout(partitions: int = 2, **settings: object) -> AlertFanout:
    fanout = AlertFanout(Settings(**settings))  # type: ignore[arg-type]
    # What _position does on a first start against a topic that is empty.
    fanout.partitions = partitions
    fanout._positions = [0] * partitions
    fanout._covered_from = [0] * partitions
    return fanout


def alert(well_id: int, n: int, severity: Severity = Severity.critical) -> bytes:
    return ev.Alert(
        kind=AlertKind.maasp_exceeded,
        severity=severity,
        well_id=well_id,
        annulus_id=well_id,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        message=f"n={n}",
    ).encode()


def events(chunks: list[bytes]) -> list[tuple[str, int]]:
    """(id, n) of every SSE event in ``chunks``."""
    out = []
    for chunk in chunks:
        fields = dict(line.split(": ", 1) for line in chunk.decode().splitlines() if line)
        out.append((fields["id"], int(orjson.loads(fields["data"])["message"][2:])))
    return out


def publish(fanout: AlertFanout, sent: list[tuple[int, int]]) -> None:
    """``sent``: (partition, n) in the order the feed reads them; offsets follow."""
    for partition, n in sent:
        fanout._publish(partition, fanout._positions[partition], alert(n % 3, n))


def test_offsets_kafka_cannot_hold_are_refused_with_the_reason() -> None:
    assert parse_position(f"0:{MAX_OFFSET},1:0") == {0: MAX_OFFSET, 1: 0}
    for bad, words in [
        (f"0:{MAX_OFFSET + 1}", "beyond the largest Kafka offset"),
        ("0:18446744073709551616", "beyond the largest Kafka offset"),
        ("0:-1", "must not be negative"),
        ("0:1,0:2", "named twice"),
        ("0;1", "is not partition:offset"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_position(bad)


async def test_a_position_naming_an_unknown_partition_is_refused() -> None:
    fanout = make_fanout(partitions=2)
    with pytest.raises(ValueError, match="partition 2 does not exist"):
        await fanout.check_position({0: 0, 2: 0})


def test_live_subscribers_share_one_message_and_filters_apply() -> None:
    fanout = make_fanout()
    everyone = Subscriber(well_id=None, severities=None, cap=10)
    well_1 = Subscriber(well_id=1, severities=None, cap=10)
    fanout.join(everyone, None)
    fanout.join(well_1, None)
    publish(fanout, [(0, 0), (1, 1), (0, 3), (1, 4)])  # wells 0, 1, 0, 1
    assert events(list(everyone.pending)) == [
        ("0:1,1:0", 0),
        ("0:1,1:1", 1),
        ("0:2,1:1", 3),
        ("0:2,1:2", 4),
    ]
    assert events(list(well_1.pending)) == [("0:1,1:1", 1), ("0:2,1:2", 4)]
    # Built once, handed to both: 500 streams do not format an alert 500 times.
    assert everyone.pending[1] is well_1.pending[0]


def test_a_resume_inside_the_buffer_replays_exactly_what_follows_then_goes_live() -> None:
    fanout = make_fanout(sse_replay_buffer=100)
    publish(fanout, [(0, 0), (1, 1), (0, 2), (1, 3), (0, 4)])
    sub = Subscriber(well_id=None, severities=None, cap=10)
    start = fanout.start_vector(parse_position("0:1,1:1"))  # after alerts 0 and 1
    assert not fanout.needs_catch_up(start)
    fanout.join(sub, start)
    publish(fanout, [(1, 5)])
    assert [n for _, n in events(list(sub.backlog) + list(sub.pending))] == [2, 3, 4, 5]
    # The last id names the feed's position after alert 5.
    assert events(list(sub.pending))[-1][0] == "0:3,1:3"


def test_a_resume_from_before_the_buffer_needs_a_catch_up() -> None:
    fanout = make_fanout(sse_replay_buffer=3)
    publish(fanout, [(0, n) for n in range(6)])  # offsets 0..5 on partition 0; keeps 3..5
    assert fanout.needs_catch_up(fanout.start_vector({0: 2, 1: 0}))
    assert not fanout.needs_catch_up(fanout.start_vector({0: 3, 1: 0}))
    with pytest.raises(RuntimeError):
        fanout.join(Subscriber(well_id=None, severities=None, cap=10), (2, 0))


def test_a_resume_from_another_process_ahead_of_this_feed_gets_nothing_twice() -> None:
    fanout = make_fanout()
    publish(fanout, [(0, 0), (0, 1)])
    sub = Subscriber(well_id=None, severities=None, cap=10)
    # The client already has partition 0 up to offset 3 (another API process was ahead).
    fanout.join(sub, (4, 0))
    publish(fanout, [(0, 2), (1, 3), (0, 4), (0, 5)])  # offsets 2, 0, 3, 4 of their partitions
    got = events(list(sub.pending))
    assert [n for _, n in got] == [3, 5]  # partition 1's first, then partition 0 from offset 4
    assert [i for i, _ in got] == ["0:4,1:1", "0:5,1:1"]  # never behind what it had


def test_a_slow_client_is_closed_with_a_reason_and_leaves_the_feed() -> None:
    fanout = make_fanout(sse_client_queue=3)
    slow = Subscriber(well_id=None, severities=None, cap=3)
    fast = Subscriber(well_id=None, severities=None, cap=100)
    fanout.join(slow, None)
    fanout.join(fast, None)
    publish(fanout, [(0, n) for n in range(4)])
    assert slow.closed is not None and slow.closed[0] == "slow_client"
    assert "Last-Event-ID" in slow.closed[1] and not slow.pending
    assert slow not in fanout._subs and len(fast.pending) == 4


def test_stream_caps_per_user_and_per_process() -> None:
    fanout = make_fanout(sse_max_streams_per_user=2, sse_max_streams=3)
    fanout.reserve(1)
    fanout.reserve(1)
    with pytest.raises(StreamRefused, match="WIMS_SSE_MAX_STREAMS_PER_USER"):
        fanout.reserve(1)
    fanout.reserve(2)
    with pytest.raises(StreamRefused, match="WIMS_SSE_MAX_STREAMS"):
        fanout.reserve(3)
    fanout.release(1)
    fanout.reserve(3)
    assert fanout.open_streams == 3
