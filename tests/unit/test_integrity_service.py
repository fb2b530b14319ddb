"""The integrity worker's pure fold: events into per-well state, and when a snapshot is due."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.integrity.core import (
    FoldError,
    Outcome,
    State,
    apply_event,
    fingerprint_key,
    well_inputs,
)
from services.integrity.core import decide as fold_decide
from shared.contracts import events as ev
from shared.contracts.enums import (
    AlertKind,
    ElementStatus,
    ElementType,
    EnvelopeType,
    IntegrityStatus,
    Severity,
    TestResult,
    TestType,
    UtilisationLevel,
    WellType,
)
from shared.domain.alarms import AlarmPolicy
from shared.domain.integrity import IntegrityAssessment, evaluate_well

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
# These tests are about snapshots and what a colour change alert says; when a change is
# alerted (persistence, settling) is tested in test_alarms.py.
NO_DELAY = AlarmPolicy(persist=timedelta(0), settling=timedelta(0))


def decide(
    state: State, assessment: IntegrityAssessment, cause: str, now: datetime
) -> Outcome | None:
    return fold_decide(state, assessment, cause, now, NO_DELAY)


WELL = 17
SSSV, PACKER, CASING, WELLHEAD = 1, 2, 11, 12
ANNULUS_A = 51


def config(version: int = 1, **kw: object) -> ev.WellConfig:
    elements = [
        (SSSV, "SSSV", ElementType.sssv, EnvelopeType.primary),
        (PACKER, "Packer", ElementType.packer, EnvelopeType.primary),
        (CASING, "Casing", ElementType.casing, EnvelopeType.secondary),
        (WELLHEAD, "Wellhead", ElementType.wellhead, EnvelopeType.secondary),
    ]
    fields: dict = dict(
        well_id=WELL,
        version=version,
        name="W-17",
        type=WellType.gas_producer,
        consequence_level=4,
        annuli=[ev.AnnulusRef(id=ANNULUS_A, name="A")],
        elements=[
            ev.BarrierElementConfig(
                id=i, name=n, element_type=t, envelope_type=e, status=ElementStatus.ok
            )
            for i, n, t, e in elements
        ],
        updated_at=NOW,
    )
    fields.update(kw)
    return ev.WellConfig(**fields)


def status_change(element_id: int, new: ElementStatus, ts: datetime) -> ev.ElementStatusChanged:
    secondary = element_id >= 10
    return ev.ElementStatusChanged(
        well_id=WELL,
        barrier_element_id=element_id,
        element_name=f"element {element_id}",
        element_type=ElementType.casing if secondary else ElementType.sssv,
        envelope_type=EnvelopeType.secondary if secondary else EnvelopeType.primary,
        old_status=None,
        new_status=new,
        ts=ts,
    )


def recorded_test(
    result: TestResult, ts: datetime, next_due: datetime | None = None
) -> ev.BarrierTestRecorded:
    return ev.BarrierTestRecorded(
        well_id=WELL,
        barrier_element_id=SSSV,
        element_name="SSSV",
        element_type=ElementType.sssv,
        envelope_type=EnvelopeType.primary,
        test_id=99,
        test_type=TestType.inflow,
        result=result,
        test_date=ts,
        next_test_due=next_due,
    )


def alert(kind: AlertKind, ts: datetime, **kw: object) -> ev.Alert:
    fields: dict = dict(
        kind=kind,
        severity=Severity.warning,
        well_id=WELL,
        annulus_id=ANNULUS_A,
        ts=ts,
        message=kind.value,
    )
    fields.update(kw)
    return ev.Alert(**fields)


def fold(*events: ev.Event, state: State | None = None) -> State | None:
    for e in events:
        state = apply_event(state, e, partition=3)
    return state


def colour(state: State | None, now: datetime = NOW) -> IntegrityStatus:
    assert state is not None
    inputs = well_inputs(state)
    assert inputs is not None
    return evaluate_well(inputs, now).status


def test_state_is_plain_json_and_survives_a_round_trip() -> None:
    state = fold(
        config(),
        status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)),
        alert(AlertKind.maasp_warning, NOW + timedelta(seconds=2), utilisation=0.83),
    )
    # The state lives in a JSON changelog: what comes back must assess the same.
    assert json.loads(json.dumps(state)) == state
    assert state is not None and state["partition"] == 3
    assert colour(json.loads(json.dumps(state))) == colour(state) == IntegrityStatus.amber


def test_a_well_without_config_is_not_assessed() -> None:
    state = fold(alert(AlertKind.maasp_exceeded, NOW))
    assert state is not None
    assert well_inputs(state) is None
    # ...and the evidence waits for the config rather than being lost.
    assert colour(fold(config(), state=state)) == IntegrityStatus.red


def test_the_input_state_is_never_modified() -> None:
    before = fold(config())
    assert before is not None
    frozen = json.dumps(before, sort_keys=True)
    fold(status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)), state=before)
    assert json.dumps(before, sort_keys=True) == frozen


def test_barrier_failures_take_the_well_from_green_to_amber_to_red() -> None:
    green = fold(config())
    amber = fold(recorded_test(TestResult.failed, NOW + timedelta(seconds=1)), state=green)
    red = fold(status_change(CASING, ElementStatus.failed, NOW + timedelta(seconds=2)), state=amber)
    assert [colour(s) for s in (green, amber, red)] == [
        IntegrityStatus.green,
        IntegrityStatus.amber,
        IntegrityStatus.red,
    ]


def test_a_passed_test_moves_the_due_date_but_does_not_mend_a_failed_element() -> None:
    due = NOW + timedelta(days=180)
    state = fold(
        config(),
        status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)),
        recorded_test(TestResult.passed, NOW + timedelta(seconds=2), next_due=due),
    )
    assert state is not None
    assert state["elements"][str(SSSV)]["status"] == "failed"
    assert state["elements"][str(SSSV)]["next_test_due"] == due.isoformat()


def test_an_overdue_test_counts_only_once_the_due_time_has_passed() -> None:
    due = NOW + timedelta(hours=1)
    state = fold(recorded_test(TestResult.passed, NOW, next_due=due), config())
    assert colour(state, now=due) == IntegrityStatus.green
    assert colour(state, now=due + timedelta(seconds=1)) == IntegrityStatus.amber


def test_late_or_replayed_facts_do_not_roll_the_state_back() -> None:
    t1, t2 = NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)
    state = fold(
        config(),
        alert(AlertKind.maasp_exceeded, t2),
        # a heartbeat read before the exceedance, arriving after it on another topic
        ev.AnnulusState(
            well_id=WELL,
            annulus_id=ANNULUS_A,
            ts=t1,
            pressure_bar=10.0,
            maasp_bar=100.0,
            utilisation=0.1,
            level=UtilisationLevel.normal,
        ),
        # an element status change older than the current one
        status_change(SSSV, ElementStatus.failed, t2),
        status_change(SSSV, ElementStatus.ok, t1),
    )
    assert state is not None
    assert state["annuli"][str(ANNULUS_A)]["level"] == "exceeded"
    assert state["elements"][str(SSSV)]["status"] == "failed"


def test_a_config_replay_does_not_undo_a_later_status_change() -> None:
    state = fold(config(), status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)))
    assert colour(fold(config(), state=state)) == IntegrityStatus.amber
    # A status change that arrived before the (older) config it postdates survives it too.
    early = fold(status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)), config())
    assert colour(early) == IntegrityStatus.amber


def test_a_newer_config_replaces_elements_annuli_and_consequence() -> None:
    state = fold(config(), alert(AlertKind.maasp_exceeded, NOW + timedelta(seconds=1)))
    newer = fold(
        config(version=2, annuli=[], consequence_level=2, updated_at=NOW + timedelta(seconds=5)),
        state=state,
    )
    assert newer is not None
    assert newer["annuli"] == {} and newer["consequence"] == 2
    assert colour(newer) == IntegrityStatus.green


def test_a_reading_past_both_bands_is_red_whichever_alert_is_folded_first() -> None:
    # One reading from normal to 105 % raises maasp_warning and maasp_exceeded at its
    # instant; the exceedance (or the reading's AnnulusState) may be folded first.
    crossing = [
        alert(AlertKind.maasp_warning, NOW, utilisation=1.05),
        alert(AlertKind.maasp_exceeded, NOW, utilisation=1.05),
    ]
    assert colour(fold(config(), *crossing)) == IntegrityStatus.red
    assert colour(fold(config(), *reversed(crossing))) == IntegrityStatus.red
    # A later warning (the pressure fell back into the warning band) still lowers it.
    later = alert(AlertKind.maasp_warning, NOW + timedelta(seconds=5), utilisation=0.9)
    assert colour(fold(config(), *reversed(crossing), later)) == IntegrityStatus.amber


def test_a_deleted_well_leaves_no_state() -> None:
    assert fold(config(), config(version=2, deleted=True)) is None


@pytest.mark.parametrize(
    ("kind", "level", "expected"),
    [
        (AlertKind.maasp_warning, None, IntegrityStatus.amber),
        (AlertKind.maasp_exceeded, None, IntegrityStatus.red),
        (AlertKind.sap_detected, None, IntegrityStatus.amber),
        (AlertKind.diagnostic_test_due, None, IntegrityStatus.green),
    ],
)
def test_annulus_alerts_set_the_evidence(
    kind: AlertKind, level: UtilisationLevel | None, expected: IntegrityStatus
) -> None:
    state = fold(
        config(),
        ev.AnnulusState(
            well_id=WELL,
            annulus_id=ANNULUS_A,
            ts=NOW,
            pressure_bar=10.0,
            maasp_bar=100.0,
            utilisation=0.1,
            level=UtilisationLevel.normal,
        ),
        alert(kind, NOW + timedelta(seconds=1), level=level),
    )
    assert colour(state) == expected


def test_a_clear_settles_at_the_level_it_names() -> None:
    exceeded = fold(config(), alert(AlertKind.maasp_exceeded, NOW + timedelta(seconds=1)))
    to_warning = alert(
        AlertKind.maasp_cleared, NOW + timedelta(seconds=2), level=UtilisationLevel.warning
    )
    to_normal = alert(AlertKind.maasp_cleared, NOW + timedelta(seconds=2))
    assert colour(fold(to_warning, state=exceeded)) == IntegrityStatus.amber
    assert colour(fold(to_normal, state=exceeded)) == IntegrityStatus.green


def test_own_status_alerts_are_not_folded_back_in() -> None:
    state = fold(config())
    echoed = fold(
        alert(
            AlertKind.integrity_status_changed,
            NOW + timedelta(seconds=1),
            annulus_id=None,
            status=IntegrityStatus.red,
        ),
        state=state,
    )
    assert echoed == state


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (alert(AlertKind.maasp_exceeded, NOW, annulus_id=None), "annulus_id"),
        (alert(AlertKind.maasp_cleared, NOW, level=UtilisationLevel.exceeded), "level"),
    ],
)
def test_an_event_that_breaks_its_contract_names_the_field(event: ev.Event, field: str) -> None:
    with pytest.raises(FoldError, match=f"^{field}: "):
        fold(config(), event)


def test_an_event_for_another_well_is_refused() -> None:
    state = fold(config())
    other = ev.ElementStatusChanged(
        **{**status_change(SSSV, ElementStatus.failed, NOW).model_dump(), "well_id": 18}
    )
    with pytest.raises(FoldError, match=r"^well_id: "):
        fold(other, state=state)


# --------------------------------------------------------------------------- decide


def assess(state: State | None, now: datetime = NOW):
    assert state is not None
    inputs = well_inputs(state)
    assert inputs is not None
    return evaluate_well(inputs, now)


def test_first_snapshot_of_a_green_well_raises_no_alert() -> None:
    state = fold(config())
    assert state is not None
    out = decide(state, assess(state), cause="e1", now=NOW)
    assert out is not None
    assert (
        out.snapshot.overall_status is IntegrityStatus.green
        and out.snapshot.previous_status is None
    )
    assert out.alert is None
    assert out.state["last"]["status"] == "green"


def test_same_fingerprint_means_no_snapshot() -> None:
    state = fold(config())
    assert state is not None
    first = decide(state, assess(state), cause="e1", now=NOW)
    assert first is not None
    # A reading within the same band changes the state but not what a snapshot records.
    moved = fold(
        ev.AnnulusState(
            well_id=WELL,
            annulus_id=ANNULUS_A,
            ts=NOW,
            pressure_bar=30.0,
            maasp_bar=100.0,
            utilisation=0.3,
            level=UtilisationLevel.normal,
        ),
        state=first.state,
    )
    second = decide(moved, assess(moved), cause="e2", now=NOW)  # type: ignore[arg-type]
    assert second is not None  # missing_maasp finding went away: a real change
    again = fold(
        ev.AnnulusState(
            well_id=WELL,
            annulus_id=ANNULUS_A,
            ts=NOW + timedelta(seconds=1),
            pressure_bar=41.0,
            maasp_bar=100.0,
            utilisation=0.41,
            level=UtilisationLevel.normal,
        ),
        state=second.state,
    )
    assert again is not None
    assert decide(again, assess(again), cause="e3", now=NOW) is None


def test_colour_change_raises_an_alert_with_severity_by_colour() -> None:
    start = decide(s := fold(config()), assess(s), cause="e1", now=NOW)  # type: ignore[arg-type]
    assert start is not None
    red_state = fold(
        status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)),
        status_change(CASING, ElementStatus.failed, NOW + timedelta(seconds=1)),
        state=start.state,
    )
    out = decide(red_state, assess(red_state), cause="e2", now=NOW)  # type: ignore[arg-type]
    assert out is not None and out.alert is not None
    assert out.alert.kind is AlertKind.integrity_status_changed
    assert (out.alert.previous_status, out.alert.status, out.alert.severity) == (
        IntegrityStatus.green,
        IntegrityStatus.red,
        Severity.critical,
    )
    assert out.alert.details["snapshot_event_id"] == str(out.snapshot.event_id)
    assert "failed" in out.alert.message


def test_a_new_well_that_starts_red_is_announced() -> None:
    state = fold(
        config(),
        status_change(SSSV, ElementStatus.failed, NOW + timedelta(seconds=1)),
        status_change(CASING, ElementStatus.failed, NOW + timedelta(seconds=1)),
    )
    out = decide(state, assess(state), cause="e1", now=NOW)  # type: ignore[arg-type]
    assert out is not None and out.alert is not None
    assert out.alert.previous_status is None and out.alert.severity is Severity.critical


def test_ids_are_derived_so_a_replay_gives_the_same_snapshot_and_alert() -> None:
    state = fold(config(), status_change(SSSV, ElementStatus.failed, NOW))
    a = decide(state, assess(state), cause="e1", now=NOW)  # type: ignore[arg-type]
    b = decide(state, assess(state), cause="e1", now=NOW + timedelta(minutes=5))  # type: ignore[arg-type]
    c = decide(state, assess(state), cause="e2", now=NOW)  # type: ignore[arg-type]
    assert a is not None and b is not None and c is not None
    assert a.snapshot.event_id == b.snapshot.event_id != c.snapshot.event_id
    assert a.alert is not None and b.alert is not None
    assert a.alert.event_id == b.alert.event_id


def test_fingerprint_key_is_stable_and_tracks_the_band_not_the_reading() -> None:
    state = fold(config())
    assert fingerprint_key(assess(state)) == fingerprint_key(assess(state))
    worse = fold(status_change(WELLHEAD, ElementStatus.degraded, NOW), state=state)
    assert fingerprint_key(assess(worse)) != fingerprint_key(assess(state))


def test_the_well_state_changelog_is_keyed_and_partitioned_like_the_wells_events() -> None:
    # The table's changelog record of a well goes where the partitioner puts its key, which
    # must be the bytes every producer keys the well's events with: then it lands on the
    # partition of those events, without faust consulting its (possibly stale) metadata.
    from services.integrity.worker import create_app
    from shared.contracts.topics import entity_key
    from shared.infrastructure.settings import Settings

    _, ctx = create_app(Settings())
    table = ctx.extra["integrity"].table
    assert table.use_partitioner
    for well_id in (1, 17, 123456):
        key, _ = table.changelog_topic.prepare_key(well_id, table.key_serializer)
        assert key == entity_key(well_id)
