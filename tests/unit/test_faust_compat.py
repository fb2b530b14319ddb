"""The faust workarounds of shared.infrastructure.compat: aiokafka hands faust no input record before the
worker is ready for it (rebalance over, producer knowing every changelog), never reads an
empty set of active partitions as "all of them"; a table write the producer cannot place
yet is a transient error; and a workaround refuses an unverified library version."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from shared.infrastructure import compat
from shared.infrastructure.compat.faust_worker import (
    _READY,
    _REBALANCE_ASKED,
    FetchablePartitions,
    TopicPartitionsUnknown,
    active_partitions,
    install,
    note_state_partitions,
    state_partitions,
)
from shared.infrastructure.retry import is_transient

CHANGELOG = TP("wims-integrity-well-state-changelog", 3)
ALERTS = TP("wims.alerts", 3)


def _app(rebalancing: bool, producer_ready: bool = True) -> Any:
    return SimpleNamespace(
        rebalancing=rebalancing,
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
        **{_READY: producer_ready},
    )


def test_input_partitions_are_held_while_the_worker_rebalances() -> None:
    app = _app(rebalancing=True)
    live = {CHANGELOG, ALERTS}
    view = FetchablePartitions(live, app)
    # Recovery reads the changelog; the alert waits in aiokafka's buffer.
    assert CHANGELOG in view and ALERTS not in view
    assert list(view) == [CHANGELOG] and len(view) == 1
    app.rebalancing = False  # faust: "Worker ready"
    assert ALERTS in view and len(view) == 2


def test_an_empty_active_set_is_not_every_partition_and_membership_stays_live() -> None:
    live: set[Any] = set()
    view = FetchablePartitions(live, _app(rebalancing=False))
    # aiokafka's filter is `if partitions and tp not in partitions: skip`: with a plain
    # empty set it skipped nothing and handed faust records faust then dropped.
    assert bool(view) is True
    assert ALERTS not in view and len(view) == 0
    live.add(ALERTS)  # faust resumes a partition while the fetch waits
    assert ALERTS in view
    live.clear()  # and pauses it again
    assert ALERTS not in view


def test_every_faust_fetch_goes_through_the_view() -> None:
    install()  # what every worker's make_faust_app does
    seen: list[Any] = []

    class Thread:
        """Just what AIOKafkaConsumerThread.getmany touches of itself."""

        app = _app(rebalancing=False)
        _fetch_records = None

        def _ensure_consumer(self) -> Any:
            return SimpleNamespace(_max_poll_records=10)

        async def call_thread(self, fn: Any, consumer: Any, partitions: Any, **kw: Any) -> Any:
            seen.append(partitions)
            return {}

    live: set[Any] = set()
    assert asyncio.run(AIOKafkaConsumerThread.getmany(Thread(), live, 1.0)) == {}  # type: ignore[arg-type]
    assert isinstance(seen[0], FetchablePartitions) and seen[0]
    live.add(ALERTS)
    assert ALERTS in seen[0]
    # None (a client-only app) still means what faust means by it.
    asyncio.run(AIOKafkaConsumerThread.getmany(Thread(), None, 1.0))  # type: ignore[arg-type]
    assert seen[1] is None


def test_input_waits_until_the_producer_knows_every_changelog() -> None:
    # The first-minutes defect: a table write before the producer knew the changelog's
    # partitions failed. Input is held (changelogs still recover) until it knows them.
    app = _app(rebalancing=False, producer_ready=False)
    view = FetchablePartitions({CHANGELOG, ALERTS}, app)
    assert CHANGELOG in view and ALERTS not in view
    setattr(app, _READY, True)
    assert ALERTS in view


def _app_with_tables(actives: set[TP]) -> Any:
    changelog = SimpleNamespace(
        changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG.topic)
    )
    app = _app(rebalancing=False)
    app.tables.values = lambda: [changelog]
    app.assignor = SimpleNamespace(assigned_actives=lambda: actives)
    app.conf = SimpleNamespace(id="wims-integrity")
    app.consumer_generation_id = 7
    setattr(app, _REBALANCE_ASKED, 7)  # asked about this generation: these tests ask nothing
    return app


def test_input_without_its_table_partition_is_held() -> None:
    # The scale test's defect: an assignment gave a worker an input partition but not the
    # table changelog partition of the same number; the worker worked on it with no state.
    leader = TP("wims-integrity-__assignor-__leader", 0)
    alerts_2 = TP("wims.alerts", 2)
    app = _app_with_tables({ALERTS, alerts_2, CHANGELOG, leader})  # changelog 3, not 2
    note_state_partitions(app, "integrity")
    assert state_partitions(app) == {3}
    view = FetchablePartitions({ALERTS, alerts_2, CHANGELOG, leader}, app)
    assert ALERTS in view and CHANGELOG in view and leader in view
    assert alerts_2 not in view  # held in aiokafka's buffer
    assert active_partitions(app, "wims.alerts") == {3}
    # The next assignment gives it whole: its input flows.
    app.assignor.assigned_actives = lambda: {ALERTS, alerts_2, CHANGELOG, TP(CHANGELOG.topic, 2)}
    note_state_partitions(app, "integrity")
    assert alerts_2 in view and active_partitions(app, "wims.alerts") == {2, 3}


def test_a_worker_without_tables_holds_no_input_for_them() -> None:
    app = _app_with_tables({ALERTS})
    app.tables.values = lambda: []
    note_state_partitions(app, "tasks")
    assert state_partitions(app) is None
    assert ALERTS in FetchablePartitions({ALERTS}, app)


class _Client:
    def __init__(self, topics: set[str]) -> None:
        self._topics = topics
        self.asked: list[str] = []

    def add_topic(self, topic: str) -> None:
        self.asked.append(f"add {topic}")

    def force_metadata_update(self) -> None:
        self.asked.append("refresh")


def test_a_table_write_the_producer_cannot_place_is_transient_and_asks_for_metadata() -> None:
    from faust.transport.drivers.aiokafka import Producer

    install()

    class Metadata:
        def partitions_for_topic(self, topic: str) -> Any:
            return None  # aiokafka's answer for a topic it has not fetched

    client = _Client(set())
    aiokafka_producer = SimpleNamespace(_metadata=Metadata(), client=client)
    faust_producer = SimpleNamespace(_ensure_producer=lambda: aiokafka_producer)
    try:
        Producer.key_partition(faust_producer, CHANGELOG.topic, b"17")  # type: ignore[arg-type]
    except TopicPartitionsUnknown as exc:
        assert is_transient(exc)  # retried with the offset held, never dead-lettered
    else:
        raise AssertionError("the write went through without a partition")
    assert client.asked == [f"add {CHANGELOG.topic}"]
    client._topics.add(CHANGELOG.topic)  # known before, lost by a refresh: ask again
    try:
        Producer.key_partition(faust_producer, CHANGELOG.topic, b"17")  # type: ignore[arg-type]
    except TopicPartitionsUnknown:
        pass
    assert client.asked[-1] == "refresh"


def test_an_unverified_library_version_is_refused_or_runs_the_plain_path(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(compat, "installed", lambda library: "99.0.0")
    try:
        compat.require_verified(compat.FAUST)
    except compat.UnverifiedLibrary as exc:
        assert "99.0.0" in str(exc) and "0.15.3" in str(exc)
    else:
        raise AssertionError("an unverified faust was let through")
    # A workaround that only saves time falls back to the library's own path.
    assert compat.plain_path_warning("record-batches") is False


def test_every_workaround_names_versions_upstream_fallback_and_test() -> None:
    assert compat.WORKAROUNDS
    for w in compat.WORKAROUNDS:
        assert w.verified and w.upstream and w.test and w.where
        assert w.other_versions in ("refuse", "plain")
        assert compat.installed(w.library) in w.verified, f"{w.name}: pins moved"
