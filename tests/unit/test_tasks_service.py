"""The tasks service's pure shell: which message calls for which task, bad input handling,
configuration, and the ids that make re-sent TaskEvents recognisable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import orjson
import pytest

from services.tasks.core import prepare_batch, rules_from_settings, spec_for_event, task_event
from services.tasks.store import task_event_id
from services.tasks.sweep import SweepReport
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    AlertKind,
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    IntegrityStatus,
    RiskCategory,
    Severity,
    TaskPriority,
    TestResult,
    TestType,
    TriggerType,
)
from shared.domain.task_rules import DEFAULT_TASK_RULES
from shared.infrastructure.settings import Settings

TS = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
ALERTS = topics.ALERTS.name


def exceeded(pressure: float = 212.4, **kw: object) -> ev.Alert:
    return ev.Alert(
        kind=AlertKind.maasp_exceeded,
        severity=Severity.critical,
        well_id=3,
        annulus_id=17,
        ts=TS,
        message="B annulus above MAASP",
        pressure_bar=pressure,
        maasp_bar=205.0,
        utilisation=pressure / 205.0,
        limiting_point="shoe",
        details={"annulus_name": "B"},
        **kw,  # type: ignore[arg-type]
    )


def test_exceedance_alert_becomes_critical_annulus_task_with_its_numbers() -> None:
    spec = spec_for_event(exceeded(), DEFAULT_TASK_RULES)
    assert spec is not None
    assert spec.trigger_type is TriggerType.maasp_exceed
    assert spec.target == "annulus:17" and spec.well_id == 3 and spec.annulus_id == 17
    assert spec.priority is TaskPriority.critical
    assert spec.due_date == TS + timedelta(hours=24)
    assert "B annulus" in spec.title
    for number in ("212.4 bar", "MAASP 205.0 bar", "104%", "shoe"):
        assert number in spec.description


@pytest.mark.parametrize("kind", [AlertKind.maasp_cleared, AlertKind.integrity_status_changed])
def test_alerts_that_call_for_no_task(kind: AlertKind) -> None:
    alert = ev.Alert(kind=kind, severity=Severity.info, well_id=3, ts=TS, message="x")
    assert spec_for_event(alert, DEFAULT_TASK_RULES) is None


def barrier_test(result: TestResult, element_type: ElementType, envelope: EnvelopeType):
    return ev.BarrierTestRecorded(
        well_id=3,
        barrier_element_id=5,
        element_name="SSSV-1",
        element_type=element_type,
        envelope_type=envelope,
        test_id=9,
        test_type=TestType.leak_rate,
        result=result,
        test_date=TS,
        leak_rate=0.6,
        leak_rate_unit="m3/min",
        pressure_applied_bar=345.0,
    )


def test_failed_sssv_test_is_critical_with_leak_rate() -> None:
    spec = spec_for_event(
        barrier_test(TestResult.failed, ElementType.sssv, EnvelopeType.secondary),
        DEFAULT_TASK_RULES,
    )
    assert spec is not None
    assert (spec.trigger_type, spec.target) == (TriggerType.failed_test, "element:5")
    assert spec.priority is TaskPriority.critical and spec.barrier_element_id == 5
    assert "leak rate 0.6 m3/min" in spec.description
    assert "test pressure 345.0 bar" in spec.description


def test_failed_secondary_wellhead_seal_test_is_high() -> None:
    spec = spec_for_event(
        barrier_test(TestResult.failed, ElementType.wellhead_seal, EnvelopeType.secondary),
        DEFAULT_TASK_RULES,
    )
    assert spec is not None and spec.priority is TaskPriority.high


def test_passed_test_and_status_change_call_for_no_task() -> None:
    assert (
        spec_for_event(
            barrier_test(TestResult.passed, ElementType.sssv, EnvelopeType.primary),
            DEFAULT_TASK_RULES,
        )
        is None
    )
    changed = ev.ElementStatusChanged(
        well_id=3,
        barrier_element_id=5,
        element_name="SSSV-1",
        element_type=ElementType.sssv,
        envelope_type=EnvelopeType.primary,
        old_status=ElementStatus.ok,
        new_status=ElementStatus.failed,
        ts=TS,
    )
    assert spec_for_event(changed, DEFAULT_TASK_RULES) is None


def snapshot(status: IntegrityStatus, previous: IntegrityStatus | None) -> ev.IntegritySnapshot:
    return ev.IntegritySnapshot(
        well_id=3,
        created_at=TS,
        overall_status=status,
        previous_status=previous,
        primary_status=EnvelopeStatus.failed,
        secondary_status=EnvelopeStatus.degraded,
        probability=4,
        consequence=4,
        risk_score=64,
        risk_category=RiskCategory.high,
        findings=[{"code": "envelope_failed", "message": "primary envelope failed: SSSV-1"}],
    )


def test_turning_red_opens_a_review_and_staying_red_does_not() -> None:
    spec = spec_for_event(snapshot(IntegrityStatus.red, IntegrityStatus.amber), DEFAULT_TASK_RULES)
    assert spec is not None
    assert (spec.trigger_type, spec.target) == (TriggerType.integrity_red, "well:3")
    assert "primary envelope failed: SSSV-1" in spec.description
    assert (
        spec_for_event(snapshot(IntegrityStatus.red, IntegrityStatus.red), DEFAULT_TASK_RULES)
        is None
    )


def test_batch_skips_bad_messages_and_keeps_the_good_ones() -> None:
    good = exceeded()
    wrong_field = exceeded().model_dump(mode="json") | {"kind": "volcano"}
    batch = prepare_batch(
        ALERTS, [b"not json", good.encode(), None, orjson.dumps(wrong_field)], DEFAULT_TASK_RULES
    )
    assert [p.event_id for p in batch.tasks] == [good.event_id]
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (0, "undecodable"),
        (2, "undecodable"),
        (3, "invalid"),
    ]
    assert "kind" in batch.rejected[2].error  # the field at fault is named
    assert batch.handled == 1


def test_batch_applies_one_event_id_once() -> None:
    first = exceeded()
    second = exceeded(pressure=220.0)
    batch = prepare_batch(
        ALERTS,
        [first.encode(), first.encode(), second.encode(), first.encode()],
        DEFAULT_TASK_RULES,
    )
    assert [p.event_id for p in batch.tasks] == [first.event_id, second.event_id]
    assert batch.handled == 4


def test_test_intervals_and_reminder_lead_are_configurable() -> None:
    rules = rules_from_settings(
        Settings(tasks_reminder_days=30, tasks_test_interval_days={"sssv": 90})
    )
    assert rules.reminder_days == 30
    assert rules.interval_days(ElementType.sssv) == 90
    assert rules.interval_days(ElementType.wellhead_seal) == 365  # untouched default


@pytest.mark.parametrize(
    ("intervals", "message"),
    [({"sssvv": 90}, "unknown element type 'sssvv'"), ({"sssv": 0}, "positive")],
)
def test_bad_interval_setting_names_the_setting(intervals: dict, message: str) -> None:
    with pytest.raises(ValueError, match="WIMS_TASKS_TEST_INTERVAL_DAYS") as info:
        rules_from_settings(Settings(tasks_test_interval_days=intervals))
    assert message in str(info.value)


def test_resent_task_event_has_the_original_id() -> None:
    source = uuid4()
    assert task_event_id(source) == task_event_id(source)
    assert task_event_id(source) != task_event_id(uuid4())


def test_sweep_report_lists_what_it_did() -> None:
    created = task_event(
        event_id=uuid4(),
        action="created",
        task_id=12,
        well_id=3,
        trigger_type="test_due",
        target="element:5",
        priority="normal",
        status="open",
        due_date=TS,
        title="Barrier test due: SSSV-1, well 3",
    )
    report = SweepReport(checked=2, created=[created])
    lines = report.lines()
    assert "1 created, 0 escalated" in lines[0]
    assert "task 12" in lines[1] and "element:5" in lines[1] and "normal" in lines[1]
