"""Alarm hygiene: when a well's colour change becomes an alert (shared.domain.alarms), the
"not assessed" verdict (shared.domain.integrity) and how the integrity fold uses both."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from services.integrity.core import State, apply_event, decide, wake_at, well_inputs
from shared.contracts import events as ev
from shared.contracts.enums import (
    ElementStatus,
    ElementType,
    EnvelopeType,
    IntegrityStatus,
    TestResult,
    TestType,
    WellType,
)
from shared.domain.alarms import AlarmPolicy, ColourAlarm, Quiet, decide_alarm
from shared.domain.integrity import evaluate_well

GREEN, AMBER, RED = IntegrityStatus.green, IntegrityStatus.amber, IntegrityStatus.red
T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
POLICY = AlarmPolicy(persist=timedelta(seconds=120), settling=timedelta(seconds=300))


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --------------------------------------------------------------------------- pure decision


def run(colours: list[tuple[float, IntegrityStatus]], quiet: Quiet = Quiet()) -> list[str]:
    """Feed (second, colour) evaluations; the announcements as 'second:colour'."""
    alarm = ColourAlarm()
    out = []
    for t, colour in colours:
        d = decide_alarm(alarm, colour, s(t), quiet, POLICY)
        alarm = d.alarm
        if d.announce is not None:
            out.append(f"{t:g}:{d.announce.value}")
    return out


def test_red_is_announced_at_once() -> None:
    assert run([(0, GREEN), (1, RED)]) == ["1:red"]


def test_amber_is_announced_once_it_has_persisted() -> None:
    assert run([(0, GREEN), (10, AMBER), (60, AMBER), (129, AMBER), (130, AMBER)]) == ["130:amber"]


def test_a_chattering_amber_raises_nothing() -> None:
    # The demo's chatter: amber <-> green within a second, again and again.
    chatter = [(t, AMBER if t % 2 else GREEN) for t in range(0, 600)]
    assert run(chatter) == []


def test_an_amber_that_reverts_inside_the_persistence_time_raises_nothing() -> None:
    assert run([(0, AMBER), (119, GREEN), (200, GREEN), (400, GREEN)]) == []


def test_a_new_well_that_starts_green_is_not_news() -> None:
    assert run([(0, GREEN), (500, GREEN)]) == []


def test_a_red_that_eases_to_amber_waits_and_returning_to_red_says_nothing_new() -> None:
    assert run([(0, RED), (10, AMBER), (100, RED), (300, RED)]) == ["0:red"]
    assert run([(0, RED), (10, AMBER), (130, AMBER)]) == ["0:red", "130:amber"]


def test_a_pending_amber_overtaken_by_red_is_announced_as_red_at_once() -> None:
    assert run([(0, AMBER), (50, RED)]) == ["50:red"]


def test_the_pending_change_wakes_the_worker_at_its_due_time() -> None:
    d = decide_alarm(ColourAlarm(GREEN), AMBER, s(10), Quiet(), POLICY)
    assert d.announce is None and d.wake_at == s(130)
    assert decide_alarm(d.alarm, AMBER, s(130), Quiet(), POLICY).announce is AMBER


def test_no_persistence_announces_every_change() -> None:
    policy = AlarmPolicy(persist=timedelta(0), settling=timedelta(0))
    d = decide_alarm(ColourAlarm(GREEN), AMBER, s(0), Quiet(), policy)
    assert d.announce is AMBER


@pytest.mark.parametrize(
    ("quiet", "reason"),
    [
        (Quiet(commissioning=True), "commissioning"),
        (Quiet(configured_at=s(0)), "settling"),
        (Quiet(assessment_gaps=("annulus A has no MAASP",)), "not_assessed"),
    ],
)
def test_a_quiet_well_raises_no_colour_alert_not_even_red(quiet: Quiet, reason: str) -> None:
    d = decide_alarm(ColourAlarm(GREEN), RED, s(10), quiet, POLICY)
    assert (d.announce, d.quiet_reason) == (None, reason)
    assert d.alarm == ColourAlarm(GREEN)  # nothing pends while quiet


def test_settling_ends_on_time_and_a_condition_still_there_is_announced_once() -> None:
    quiet = Quiet(configured_at=s(0))
    d = decide_alarm(ColourAlarm(), RED, s(299), quiet, POLICY)
    assert d.announce is None and d.wake_at == s(300)
    d = decide_alarm(d.alarm, RED, s(300), quiet, POLICY)
    assert d.announce is RED
    assert decide_alarm(d.alarm, RED, s(301), quiet, POLICY).announce is None


def test_an_excursion_that_began_and_ended_while_quiet_raises_nothing() -> None:
    alarm = ColourAlarm(GREEN)
    for t, colour in [(10, AMBER), (20, RED), (30, GREEN)]:
        alarm = decide_alarm(alarm, colour, s(t), Quiet(commissioning=True), POLICY).alarm
    assert decide_alarm(alarm, GREEN, s(40), Quiet(), POLICY).announce is None


def test_negative_times_are_refused() -> None:
    with pytest.raises(ValueError, match="persist"):
        AlarmPolicy(persist=timedelta(seconds=-1))


def test_the_alarm_round_trips_through_json() -> None:
    alarm = ColourAlarm(GREEN, AMBER, s(5))
    assert ColourAlarm.from_dict(alarm.to_dict()) == alarm
    assert ColourAlarm.from_dict(ColourAlarm().to_dict()) == ColourAlarm()


colours = hs.sampled_from([GREEN, AMBER, RED])
steps = hs.lists(
    hs.tuples(hs.floats(min_value=0, max_value=400), colours, hs.booleans()), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_no_two_alerts_within_the_persistence_time_unless_the_second_is_red(
    steps: list[tuple[float, IntegrityStatus, bool]],
) -> None:
    """Whatever the colours, gaps and quiet spells: after an announcement, the next one
    within the persistence time is to red; and no announcement repeats the last colour."""
    alarm, t = ColourAlarm(), 0.0
    announced: list[tuple[float, IntegrityStatus]] = []
    for gap, colour, commissioning in steps:
        t += gap
        before = alarm.announced or GREEN
        d = decide_alarm(alarm, colour, s(t), Quiet(commissioning=commissioning), POLICY)
        alarm = d.alarm
        if d.announce is not None:
            assert d.announce is colour and colour is not before
            announced.append((t, colour))
    for (t1, _), (t2, c2) in itertools.pairwise(announced):
        assert t2 - t1 >= POLICY.persist.total_seconds() or c2 is RED


# --------------------------------------------------------------------------- not assessed

WELL = 7


def element(
    eid: int, envelope: EnvelopeType, status: ElementStatus = ElementStatus.ok
) -> ev.BarrierElementConfig:
    return ev.BarrierElementConfig(
        id=eid,
        name=f"element {eid}",
        element_type=ElementType.sssv if envelope is EnvelopeType.primary else ElementType.casing,
        envelope_type=envelope,
        status=status,
    )


FULL = [element(1, EnvelopeType.primary), element(11, EnvelopeType.secondary)]


def config(
    version: int,
    at: datetime,
    elements: list[ev.BarrierElementConfig] = FULL,
    points: int | None = 2,
    commissioning: bool = False,
    failed: tuple[int, ...] = (),
) -> ev.WellConfig:
    """The well's config as the API publishes it; ``failed`` elements carry that status."""
    elements = [
        e.model_copy(update={"status": ElementStatus.failed}) if e.id in failed else e
        for e in elements
    ]
    return ev.WellConfig(
        well_id=WELL,
        version=version,
        name="NS-07",
        well_type=WellType.oil_producer,
        consequence_level=3,
        annuli=[ev.AnnulusRef(id=70, name="A", critical_points=points)],
        elements=elements,
        commissioning=commissioning,
        updated_at=at,
    )


def fold(state: State | None, *events: ev.Event) -> State:
    for e in events:
        state = apply_event(state, e, partition=0)
    assert state is not None
    return state


def step(state: State, now: datetime, cause: str) -> tuple[State, ev.Alert | None]:
    inputs = well_inputs(state)
    assert inputs is not None
    out = decide(state, evaluate_well(inputs, now), cause, now, POLICY)
    return (state, None) if out is None else (out.state, out.alert)


def test_a_well_without_elements_or_maasp_is_not_assessed_and_says_why() -> None:
    state = fold(None, config(1, T0, elements=[FULL[0]], points=0))
    a = evaluate_well(well_inputs(state), T0)  # type: ignore[arg-type]
    assert not a.assessed
    assert a.assessment_gaps == (
        "no barrier elements in the secondary envelope",
        "annulus A has no MAASP",
    )
    assert a.to_dict()["assessed"] is False


def test_a_fully_configured_well_is_assessed_and_old_configs_are_not_held_against_it() -> None:
    assert evaluate_well(well_inputs(fold(None, config(1, T0))), T0).assessed  # type: ignore[arg-type]
    # A config from before critical points were counted says nothing about the MAASP.
    old = fold(None, config(1, T0, points=None))
    assert evaluate_well(well_inputs(old), T0).assessed  # type: ignore[arg-type]


def test_the_snapshot_records_the_colour_of_an_unassessed_well_but_no_alert() -> None:
    state = fold(None, config(1, s(-1000), points=0))
    failed = ev.ElementStatusChanged(
        well_id=WELL,
        element_id=1,
        element_name="element 1",
        element_type=ElementType.sssv,
        envelope_type=EnvelopeType.primary,
        old_status=ElementStatus.ok,
        new_status=ElementStatus.failed,
        ts=s(0),
    )
    state = fold(state, failed)
    out = decide(state, evaluate_well(well_inputs(state), s(1)), "e", s(1), POLICY)  # type: ignore[arg-type]
    assert out is not None and out.snapshot is not None and out.alert is None
    assert (out.snapshot.overall_status, out.snapshot.assessed) == (AMBER, False)
    assert out.snapshot.assessment_gaps == ["annulus A has no MAASP"]


# --------------------------------------------------------------------------- in the fold


def failed_test(at: datetime, element_id: int = 1) -> ev.BarrierTestRecorded:
    primary = element_id < 10
    return ev.BarrierTestRecorded(
        well_id=WELL,
        element_id=element_id,
        element_name=f"element {element_id}",
        element_type=ElementType.sssv if primary else ElementType.casing,
        envelope_type=EnvelopeType.primary if primary else EnvelopeType.secondary,
        test_id=element_id,
        test_type=TestType.inflow,
        result=TestResult.failed,
        performed_at=at,
    )


def test_seeding_a_well_element_by_element_raises_no_colour_alert() -> None:
    # Each element arrives as a new config a second apart, as the demo seeds a well:
    # the colour swings between amber and green on the way, and nobody is told.
    state: State | None = None
    alerts = []
    elements: list[ev.BarrierElementConfig] = []
    for i in range(1, 11):
        envelope = EnvelopeType.primary if i % 2 else EnvelopeType.secondary
        elements.append(element(i if i % 2 else 10 + i, envelope))
        state = fold(state, config(i, s(i), elements=list(elements), points=i // 3))
        state, alert = step(state, s(i), f"c{i}")
        alerts.append(alert)
    assert state is not None and state["last"]["status"] == "green"
    assert alerts == [None] * 10
    # After the settling time, still green: nothing to say either.
    assert wake_at(state) == s(10 + 300)
    state, alert = step(state, s(310), "sweep")
    assert alert is None and wake_at(state) is None


def test_after_settling_a_failed_barrier_test_alerts_at_once() -> None:
    state, _ = step(fold(None, config(1, s(0))), s(0), "c1")
    state, _ = step(state, s(300), "sweep")
    state = fold(state, failed_test(s(400)), failed_test(s(400), element_id=11))
    state, alert = step(state, s(401), "t1")
    assert alert is not None and (alert.previous_status, alert.status) == (GREEN, RED)


def test_a_status_change_or_test_record_is_not_a_configuration_change() -> None:
    state, _ = step(fold(None, config(1, s(0))), s(0), "c1")
    # The API republishes the config with each recorded test: same make-up, new version.
    state = fold(
        state, failed_test(s(400)), failed_test(s(400), 11), config(2, s(400), failed=(1, 11))
    )
    state, alert = step(state, s(401), "t1")
    assert alert is not None and alert.status is RED


def test_a_failure_within_the_settling_time_is_announced_when_it_ends() -> None:
    state, _ = step(fold(None, config(1, s(0))), s(0), "c1")
    state = fold(state, failed_test(s(10)), failed_test(s(10), 11))
    state, alert = step(state, s(11), "t1")
    assert alert is None and wake_at(state) == s(300)
    state, alert = step(state, s(300), "sweep")
    assert alert is not None and alert.status is RED


def test_a_commissioning_well_raises_none_until_cleared() -> None:
    state, _ = step(fold(None, config(1, s(-1000), commissioning=True)), s(0), "c1")
    state = fold(state, failed_test(s(10)), failed_test(s(10), 11))
    state, alert = step(state, s(11), "t1")
    assert alert is None and wake_at(state) is None
    # The engineer clears the flag: the make-up is unchanged, so no settling starts, and
    # the well's colour is announced at once (red).
    state = fold(state, config(2, s(20), commissioning=False, failed=(1, 11)))
    state, alert = step(state, s(21), "c2")
    assert alert is not None and alert.status is RED


def test_a_pending_amber_fires_on_the_sweep_without_any_event_and_only_once() -> None:
    state, _ = step(fold(None, config(1, s(-1000))), s(0), "c1")
    state = fold(state, failed_test(s(10)))
    state, alert = step(state, s(11), "t1")
    assert alert is None and wake_at(state) == s(131)
    state, alert = step(state, s(100), "sweep")
    assert alert is None
    fired, alert = step(state, s(131), "sweep")
    assert alert is not None and (alert.previous_status, alert.status) == (GREEN, AMBER)
    assert alert.details["held_since"] == s(11).isoformat()
    # A replay from the stored state before the write derives the same alert id.
    _, again = step(state, s(140), "sweep")
    assert again is not None and again.event_id == alert.event_id
    # Once stored, later sweeps say nothing more.
    assert step(fired, s(500), "sweep")[1] is None


def test_a_state_from_before_alarm_hygiene_keeps_what_was_announced() -> None:
    state, _ = step(fold(None, config(1, s(-1000))), s(0), "c1")
    state = fold(state, failed_test(s(10)), failed_test(s(10), 11))
    legacy = {k: v for k, v in state.items() if k not in ("alarm", "configured_at")}
    legacy["last"] = {**state["last"], "status": "red"}  # announced red back then
    assert step(legacy, s(20), "t")[1] is None


def test_gaining_a_maasp_changes_the_fingerprint_and_an_assessed_well_keeps_its_old_one() -> None:
    gap = evaluate_well(well_inputs(fold(None, config(1, T0, points=0))), T0)  # type: ignore[arg-type]
    full = evaluate_well(well_inputs(fold(None, config(1, T0))), T0)  # type: ignore[arg-type]
    assert gap.fingerprint() != full.fingerprint()
    # Fingerprints stored before gaps were judged stay valid: no snapshot burst on upgrade.
    assert len(full.fingerprint()) == 8  # the eight parts it had before
