"""The transactional outbox: API changes reach the stream processors' topics, in order, even
across a Kafka outage, and a rolled-back change publishes nothing.

The Kafka outage test stops the broker: it is the LAST test here and restores the broker in
a ``finally``.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from services.api.processing.outbox import queue_annulus_config
from shared.contracts import events as ev
from shared.contracts import topics
from shared.persistence.models import Annulus
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    KafkaTail,
    Users,
    api_fixture,
    build_well,
    poll_until,
    users_fixture,
)
from tests.support.stack import Stack

V1 = "/api/v1"


async def test_changing_a_critical_point_publishes_the_annulus_config(
    api: Api, users: Users
) -> None:
    admin = users.headers["admin"]
    ids = await build_well(api.client, admin)
    tail = await KafkaTail(api.settings, topics.ANNULUS_CONFIG.name).start()
    try:
        r = await api.client.patch(
            f"{V1}/critical-points/{ids['cp_packer']}",
            json={"pressure_limit_bar": 420.0},
            headers=users.headers["engineer"],
        )
        assert r.status_code == 200

        def is_new_limit(key: bytes, cfg: ev.AnnulusConfig) -> bool:
            return cfg.annulus_id == ids["annulus"] and any(
                p.id == ids["cp_packer"] and p.pressure_limit_bar == 420.0
                for p in cfg.critical_points
            )

        cfg = await tail.wait_for(is_new_limit, timeout_s=10)
    finally:
        await tail.stop()
    key = next(k for k, v in tail.seen if v is cfg)
    assert key == str(ids["annulus"]).encode()
    assert cfg.well_id == ids["well"] and cfg.fluid_gradient_bar_per_m == 0.1
    assert {p.label for p in cfg.critical_points} == {"wellhead", "packer"}
    # Versions grow with every change, so the MAASP worker can keep only the newest.
    versions = [v.version for _, v in tail.seen if v.annulus_id == ids["annulus"]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


async def test_failed_barrier_test_fails_the_element_and_emits_both_events(
    api: Api, users: Users
) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    tail = await KafkaTail(api.settings, topics.BARRIER_EVENTS.name).start()
    performed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        r = await api.client.post(
            f"{V1}/barrier-elements/{ids['element']}/tests",
            json={
                "test_type": "leak-rate",
                "test_date": performed.isoformat(),
                "result": "fail",
                "leak_rate": 900.0,
                "leak_rate_unit": "cm3/min",
            },
            headers=users.headers["engineer"],
        )
        assert r.status_code == 201, r.text
        test_id = r.json()["id"]
        recorded = await tail.wait_for(
            lambda k, e: e.event_type == "barrier_test_recorded" and e.test_id == test_id, 10
        )
        changed = await tail.wait_for(
            lambda k, e: (
                e.event_type == "element_status_changed" and e.barrier_element_id == ids["element"]
            ),
            10,
        )
    finally:
        await tail.stop()
    element = (
        await api.client.get(
            f"{V1}/barrier-elements/{ids['element']}", headers=users.headers["viewer"]
        )
    ).json()
    assert element["status"] == "failed"
    # SSSV default interval: 182 days from the test.
    expected_due = performed + timedelta(days=182)
    assert datetime.fromisoformat(element["next_test_due"]) == expected_due
    assert recorded.result == "fail" and recorded.next_test_due == expected_due
    assert recorded.well_id == ids["well"] and recorded.envelope_type == "primary"
    assert (changed.old_status, changed.new_status) == ("ok", "failed")
    keys = {k for k, e in tail.seen if e.barrier_element_id == ids["element"]}
    assert keys == {str(ids["well"]).encode()}


async def test_well_config_follows_consequence_level_and_elements(api: Api, users: Users) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    tail = await KafkaTail(api.settings, topics.WELL_CONFIG.name).start()
    try:
        r = await api.client.patch(
            f"{V1}/wells/{ids['well']}",
            json={"consequence_level": 5},
            headers=users.headers["engineer"],
        )
        assert r.status_code == 200
        cfg = await tail.wait_for(
            lambda k, c: c.well_id == ids["well"] and c.consequence_level == 5, 10
        )
    finally:
        await tail.stop()
    assert [a.name for a in cfg.annuli] == ["A"]
    assert [(e.name, e.envelope_type, e.status) for e in cfg.elements] == [
        ("SSSV", "primary", "ok")
    ]


async def test_poor_cement_reaches_the_cement_element_in_the_well_config(
    api: Api, users: Users
) -> None:
    """The integrity worker judges a cement element by the cement behind it: flagging the
    interval poor publishes the well's config with that quality on the element."""
    admin = users.headers["admin"]
    ids = await build_well(api.client, admin)
    secondary = await api.client.post(
        f"{V1}/wells/{ids['well']}/barrier-envelopes", json={"type": "secondary"}, headers=admin
    )
    element = await api.client.post(
        f"{V1}/barrier-envelopes/{secondary.json()['id']}/barrier-elements",
        json={"name": "casing cement", "element_type": "cement", "status": "ok", "depth_md": 3000},
        headers=admin,
    )
    assert element.status_code == 201 and element.json()["well_id"] == ids["well"]
    cement = await api.client.post(
        f"{V1}/wells/{ids['well']}/cement-intervals",
        json={"casing_id": ids["casing"], "top_md": 2500, "bottom_md": 3400},
        headers=admin,
    )
    tail = await KafkaTail(api.settings, topics.WELL_CONFIG.name).start()
    try:
        r = await api.client.patch(
            f"{V1}/cement-intervals/{cement.json()['id']}",
            json={"quality_flag": "poor"},
            headers=users.headers["engineer"],
        )
        assert r.status_code == 200
        cfg = await tail.wait_for(lambda k, c: c.well_id == ids["well"], 10)
    finally:
        await tail.stop()
    qualities = {e.name: (e.cement_quality, e.cement_quality_override) for e in cfg.elements}
    assert qualities == {"SSSV": (None, False), "casing cement": ("poor", False)}


async def test_an_engineer_marks_a_well_as_commissioning_and_its_config_says_so(
    api: Api, users: Users
) -> None:
    """The integrity worker raises no colour alerts for a commissioning well: the flag
    reaches it on the well's config, with each annulus's number of critical points (no
    points: no MAASP, the well is not fully assessed)."""
    ids = await build_well(api.client, users.headers["admin"])
    engineer = users.headers["engineer"]
    tail = await KafkaTail(api.settings, topics.WELL_CONFIG.name).start()
    try:
        r = await api.client.patch(
            f"{V1}/wells/{ids['well']}", json={"commissioning": True}, headers=engineer
        )
        assert r.status_code == 200, r.text
        assert r.json()["commissioning"] is True
        cfg = await tail.wait_for(lambda k, c: c.well_id == ids["well"] and c.commissioning, 10)
        assert [(a.name, a.critical_points) for a in cfg.annuli] == [("A", 2)]
        # Removing a critical point changes what the MAASP rests on: the config follows.
        r = await api.client.delete(
            f"{V1}/critical-points/{ids['cp_packer']}", headers=users.headers["admin"]
        )
        assert r.status_code == 204, r.text
        cfg = await tail.wait_for(
            lambda k, c: c.well_id == ids["well"] and c.annuli[0].critical_points == 1, 10
        )
        assert cfg.commissioning is True
    finally:
        await tail.stop()
    r = await api.client.patch(
        f"{V1}/wells/{ids['well']}", json={"commissioning": None}, headers=engineer
    )
    assert r.status_code == 422 and "commissioning" in r.text
    r = await api.client.get(f"{V1}/wells/{ids['well']}", headers=users.headers["viewer"])
    assert r.json()["commissioning"] is True


async def test_nothing_is_published_for_a_rolled_back_change(
    api: Api, users: Users, db_engine: Engine
) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    tail = await KafkaTail(api.settings, topics.ANNULUS_CONFIG.name).start()
    try:
        # A change and its outbox record written in one transaction that then rolls back
        # (as a request does when anything after the write fails).
        async with api.app.state.sessionmaker() as session:
            annulus = await session.get(Annulus, ids["annulus"])
            annulus.fluid_gradient_bar_per_m = 0.99
            await session.flush()
            await queue_annulus_config(session, annulus)
            await session.rollback()
        # A committed change after it: once it arrives, anything queued before it would have.
        r = await api.client.patch(
            f"{V1}/annuli/{ids['annulus']}",
            json={"fluid_gradient_bar_per_m": 0.105},
            headers=users.headers["engineer"],
        )
        assert r.status_code == 200
        await tail.wait_for(
            lambda k, c: c.annulus_id == ids["annulus"] and c.fluid_gradient_bar_per_m == 0.105,
            10,
        )
    finally:
        await tail.stop()
    gradients = [c.fluid_gradient_bar_per_m for _, c in tail.seen if c.annulus_id == ids["annulus"]]
    assert 0.99 not in gradients
    # The relay stamps sent_at just after the broker's ack: nothing is left waiting.
    await poll_until(lambda: _all_sent(db_engine), 10, "every committed outbox row sent")


async def test_change_made_while_kafka_is_down_is_published_when_it_returns(
    api: Api, users: Users, db_engine: Engine, stack: Stack
) -> None:
    """Keep this test LAST in the module: it stops the broker (and restores it in any case)."""
    ids = await build_well(api.client, users.headers["admin"])
    await poll_until(lambda: _all_sent(db_engine), 20, "outbox drained before the outage")
    await asyncio.to_thread(stack.stop_kafka)
    try:
        r = await asyncio.wait_for(
            api.client.patch(
                f"{V1}/critical-points/{ids['cp_wellhead']}",
                json={"pressure_limit_bar": 300.0},
                headers=users.headers["engineer"],
            ),
            timeout=5,  # the write must not wait for Kafka
        )
        assert r.status_code == 200
        # Committed (readable at once) but not published yet.
        got = await api.client.get(
            f"{V1}/critical-points/{ids['cp_wellhead']}", headers=users.headers["viewer"]
        )
        assert got.json()["pressure_limit_bar"] == 300.0
        assert not await _all_sent(db_engine)
        # Reads keep working with the broker away.
        state = await api.client.get(
            f"{V1}/wells/{ids['well']}/state", headers=users.headers["viewer"]
        )
        assert state.status_code == 200
    finally:
        await asyncio.to_thread(stack.start_kafka)

    await poll_until(lambda: _all_sent(db_engine), 90, "outbox published after Kafka returned")
    cfg = await _find_after_restart(
        api,
        lambda k, c: (
            c.annulus_id == ids["annulus"]
            and any(
                p.id == ids["cp_wellhead"] and p.pressure_limit_bar == 300.0
                for p in c.critical_points
            )
        ),
    )
    assert cfg.well_id == ids["well"]


async def _find_after_restart(api: Api, predicate: Any, timeout_s: float = 90) -> Any:
    """Read the topic from the beginning with a fresh consumer group, retried while the
    restarted broker settles."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        tail = await KafkaTail(
            api.settings, topics.ANNULUS_CONFIG.name, from_beginning=True
        ).start()
        try:
            return await tail.wait_for(predicate, 10)
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        finally:
            await tail.stop()


async def _all_sent(db_engine: Engine) -> bool:
    def count() -> int:
        with db_engine.connect() as conn:
            return int(conn.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")))

    return await asyncio.to_thread(count) == 0
