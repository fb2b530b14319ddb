"""The workaround in shared.faust_app for faust's fetches during a rebalance: aiokafka hands
faust no input record before the worker is ready for it, and never reads an empty set of
active partitions as "all of them"."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from shared.faust_app import _FetchablePartitions, hold_input_until_the_worker_is_ready

CHANGELOG = TP("wims-integrity-well-state-changelog", 3)
ALERTS = TP("wims.alerts", 3)


def _app(rebalancing: bool) -> Any:
    return SimpleNamespace(
        rebalancing=rebalancing, tables=SimpleNamespace(changelog_topics={CHANGELOG.topic})
    )


def test_input_partitions_are_held_while_the_worker_rebalances() -> None:
    app = _app(rebalancing=True)
    live = {CHANGELOG, ALERTS}
    view = _FetchablePartitions(live, app)
    # Recovery reads the changelog; the alert waits in aiokafka's buffer.
    assert CHANGELOG in view and ALERTS not in view
    assert list(view) == [CHANGELOG] and len(view) == 1
    app.rebalancing = False  # faust: "Worker ready"
    assert ALERTS in view and len(view) == 2


def test_an_empty_active_set_is_not_every_partition_and_membership_stays_live() -> None:
    live: set[Any] = set()
    view = _FetchablePartitions(live, _app(rebalancing=False))
    # aiokafka's filter is `if partitions and tp not in partitions: skip`: with a plain
    # empty set it skipped nothing and handed faust records faust then dropped.
    assert bool(view) is True
    assert ALERTS not in view and len(view) == 0
    live.add(ALERTS)  # faust resumes a partition while the fetch waits
    assert ALERTS in view
    live.clear()  # and pauses it again
    assert ALERTS not in view


def test_every_faust_fetch_goes_through_the_view() -> None:
    hold_input_until_the_worker_is_ready()  # what every worker's make_faust_app does
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
    assert isinstance(seen[0], _FetchablePartitions) and seen[0]
    live.add(ALERTS)
    assert ALERTS in seen[0]
    # None (a client-only app) still means what faust means by it.
    asyncio.run(AIOKafkaConsumerThread.getmany(Thread(), None, 1.0))  # type: ignore[arg-type]
    assert seen[1] is None
