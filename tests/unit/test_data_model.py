"""The meaning behind the specification's added fields: cement quality_flag, fluid_type
defaults, inconclusive tests, and events written before the renames still reading."""

from datetime import UTC, datetime, timedelta

import pytest

from services.integrity.core import apply_event, new_state, well_inputs
from services.tasks.core import spec_for_event
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    CementQuality,
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    RiskCategory,
    TaskPriority,
    TestResult,
    TestType,
    TriggerType,
)
from shared.domain.integrity import (
    ElementInput,
    WellInputs,
    cement_quality_behind,
    evaluate_well,
)
from shared.domain.maasp import default_fluid_gradient
from shared.domain.task_rules import DEFAULT_TASK_RULES

NOW = datetime(2026, 12, 1, tzinfo=UTC)
INTERVALS = [(0.0, 800.0, "OK"), (2500.0, 3400.0, "poor"), (1200.0, 2000.0, "uncertain")]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (3000.0, CementQuality.poor),
        (1500.0, CementQuality.uncertain),
        (400.0, CementQuality.ok),
        (2200.0, None),  # no cement behind that depth
        (None, CementQuality.poor),  # placed nowhere: the worst of the well's cement
    ],
)
def test_cement_quality_behind_an_element(depth: float | None, expected) -> None:
    assert cement_quality_behind(depth, INTERVALS) is expected


def _well(quality: CementQuality | None, override: bool = False) -> WellInputs:
    def element(i: int, name: str, et: ElementType, env: EnvelopeType, **kw) -> ElementInput:
        return ElementInput(i, name, et, env, ElementStatus.ok, NOW + timedelta(days=90), **kw)

    return WellInputs(
        well_id=1,
        consequence=3,
        elements=[
            element(1, "SSSV", ElementType.sssv, EnvelopeType.primary),
            element(
                2,
                "production casing cement",
                ElementType.cement,
                EnvelopeType.secondary,
                cement_quality=quality,
                cement_quality_override=override,
            ),
        ],
        annuli=[],
    )


@pytest.mark.parametrize("quality", [CementQuality.poor, CementQuality.uncertain])
def test_poor_or_uncertain_cement_degrades_its_element_and_says_why(quality) -> None:
    a = evaluate_well(_well(quality), NOW)
    assert a.secondary is EnvelopeStatus.degraded and a.primary is EnvelopeStatus.intact
    (why,) = [f for f in a.findings if f.code == "cement_quality"]
    assert why.subject == "element:2" and f"flagged {quality.value}" in why.message


@pytest.mark.parametrize(
    ("quality", "override"), [(CementQuality.ok, False), (None, False), (CementQuality.poor, True)]
)
def test_sound_cement_or_an_engineers_override_leaves_it_ok(quality, override: bool) -> None:
    a = evaluate_well(_well(quality, override), NOW)
    assert a.secondary is EnvelopeStatus.intact
    assert not [f for f in a.findings if f.code == "cement_quality"]


def test_cement_quality_reaches_the_assessment_through_the_well_config() -> None:
    config = ev.WellConfig(
        well_id=1,
        version=1,
        name="W-1",
        type="producer",
        consequence_level=3,
        elements=[
            ev.BarrierElementConfig(
                id=2,
                name="cement",
                element_type=ElementType.cement,
                envelope_type=EnvelopeType.secondary,
                status=ElementStatus.ok,
                cement_quality=CementQuality.poor,
            )
        ],
    )
    state = apply_event(None, config, partition=0)
    inputs = well_inputs(state)
    assert inputs is not None and inputs.elements[0].cement_quality is CementQuality.poor
    # A state stored before cement quality existed lacks the keys: read as no flag.
    old = new_state(1, 0) | {"consequence": 3}
    old["elements"] = {
        "2": {k: v for k, v in state["elements"]["2"].items() if not k.startswith("cement_")}
    }
    assert well_inputs(old).elements[0].cement_quality is None


def test_fluid_type_defaults() -> None:
    assert [default_fluid_gradient(t) for t in ("gas", "brine", "mud", "other")] == [
        0.02,
        0.117,
        0.14,
        None,
    ]


def _recorded(result: TestResult, env: EnvelopeType = EnvelopeType.secondary):
    return ev.BarrierTestRecorded(
        event_id=ev.derived_id("t", result),
        well_id=3,
        barrier_element_id=5,
        element_name="master valve",
        element_type=ElementType.tree_valve,
        envelope_type=env,
        test_id=9,
        test_type=TestType.leak_rate,
        result=result,
        test_date=NOW,
    )


def test_an_inconclusive_test_opens_one_retest_task() -> None:
    spec = spec_for_event(_recorded(TestResult.inconclusive), DEFAULT_TASK_RULES)
    assert spec is not None and spec.trigger_type is TriggerType.inconclusive_test
    assert spec.dedupe_key == (TriggerType.inconclusive_test, "element:5")
    assert spec.priority is TaskPriority.normal
    assert spec.due_date == NOW + DEFAULT_TASK_RULES.failed_test_due
    primary = spec_for_event(
        _recorded(TestResult.inconclusive, EnvelopeType.primary), DEFAULT_TASK_RULES
    )
    assert primary.priority is TaskPriority.high
    assert spec_for_event(_recorded(TestResult.passed), DEFAULT_TASK_RULES) is None


def test_an_inconclusive_test_keeps_the_elements_status_in_the_integrity_state() -> None:
    ok = ev.ElementStatusChanged(
        well_id=3,
        barrier_element_id=5,
        element_name="master valve",
        element_type=ElementType.tree_valve,
        envelope_type=EnvelopeType.secondary,
        old_status=None,
        new_status=ElementStatus.ok,
        ts=NOW - timedelta(days=1),
    )
    state = apply_event(None, ok, partition=0)
    after = apply_event(state, _recorded(TestResult.inconclusive), partition=0)
    assert after == state, "status and test dates as they were"
    failed = apply_event(state, _recorded(TestResult.failed), partition=0)
    assert failed["elements"]["5"]["status"] == ElementStatus.failed.value


def test_events_written_before_the_renames_still_decode() -> None:
    """Retained events on a topic (schema_version 1) read under the new names and values."""
    snapshot = ev.decode(
        topics.INTEGRITY_SNAPSHOTS.name,
        b'{"event_type": "integrity_snapshot", "schema_version": 1, "well_id": 2,'
        b' "ts": "2026-11-25T10:00:00Z", "status": "red", "primary_envelope_status": "failed",'
        b' "secondary_envelope_status": "intact", "probability": 4, "consequence": 5,'
        b' "risk_score": 80, "risk_category": "high", "max_utilisation": 1.1}',
    )
    assert (snapshot.overall_status, snapshot.primary_status, snapshot.risk_category) == (
        "red",
        "failed",
        RiskCategory.extreme,
    )
    assert snapshot.created_at == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert snapshot.highest_annulus_utilisation == 1.1
    test = ev.decode(
        topics.BARRIER_EVENTS.name,
        b'{"event_type": "barrier_test_recorded", "schema_version": 1, "well_id": 2,'
        b' "element_id": 5, "element_name": "SSSV", "element_type": "sssv",'
        b' "envelope_type": "primary", "test_id": 9, "test_type": "leak_rate", "result": "fail",'
        b' "performed_at": "2026-11-25T10:00:00Z", "test_pressure_bar": 200}',
    )
    assert (test.barrier_element_id, test.test_type, test.pressure_applied_bar) == (
        5,
        TestType.leak_rate,
        200,
    )
    new = ev.decode(topics.INTEGRITY_SNAPSHOTS.name, snapshot.encode())
    assert new == snapshot, "a version 2 event round-trips; 'high' stays high"
