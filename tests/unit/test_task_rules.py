"""Task rules: alerts, failed tests, integrity red, periodic tests, dedupe and escalation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.enums import (
    AlertKind,
    ElementType,
    IntegrityStatus,
    TaskPriority,
    TriggerType,
)
from shared.domain.integrity import Finding
from shared.domain.task_rules import (
    DEFAULT_TASK_RULES,
    DEFAULT_TEST_INTERVAL_DAYS,
    OpenTask,
    TaskRules,
    TaskSpec,
    TaskUpdate,
    is_escalation,
    merge,
    next_test_due,
    reminder_for_element,
    task_for_alert,
    task_for_failed_test,
    task_for_integrity,
)

TS = datetime(2025, 3, 10, 8, 30, tzinfo=UTC)
FACTS = {
    "pressure_bar": 212.4,
    "maasp_bar": 205.0,
    "utilisation": 1.0361,
    "limiting_point": "shoe",
    "annulus_name": "B",
}


# ---------------------------------------------------------------- alerts


@pytest.mark.parametrize(
    ("kind", "trigger", "priority", "due"),
    [
        (
            AlertKind.maasp_exceeded,
            TriggerType.maasp_exceed,
            TaskPriority.critical,
            timedelta(hours=24),
        ),
        (AlertKind.maasp_warning, TriggerType.maasp_warning, TaskPriority.high, timedelta(days=7)),
        (AlertKind.sap_detected, TriggerType.sap_detected, TaskPriority.high, timedelta(days=30)),
        (
            AlertKind.diagnostic_test_due,
            TriggerType.diagnostic_test_due,
            TaskPriority.high,
            timedelta(days=30),
        ),
    ],
)
def test_task_for_alert(kind, trigger, priority, due) -> None:
    spec = task_for_alert(kind, 3, 17, TS, FACTS)
    assert spec is not None
    assert spec.trigger_type is trigger
    assert spec.priority is priority
    assert spec.due_date == TS + due
    assert (spec.target, spec.well_id, spec.annulus_id, spec.barrier_element_id) == (
        "annulus:17",
        3,
        17,
        None,
    )
    assert spec.dedupe_key == (trigger, "annulus:17")
    # the numbers that caused it
    for text in ("212.4 bar", "MAASP 205.0 bar", "utilisation 104%", "limiting point shoe"):
        assert text in spec.description
    assert "B annulus" in spec.title


def test_maasp_exceeded_task_says_what_to_do() -> None:
    spec = task_for_alert(AlertKind.maasp_exceeded, 3, 17, TS, FACTS)
    assert spec is not None
    assert "below MAASP" in spec.description
    assert "source" in spec.description


@pytest.mark.parametrize("kind", [AlertKind.sap_detected, AlertKind.diagnostic_test_due])
def test_sap_tasks_ask_for_diagnostic_test(kind) -> None:
    spec = task_for_alert(kind, 3, 17, TS, {})
    assert spec is not None
    assert "bleed-down/build-up diagnostic test" in spec.description


@pytest.mark.parametrize(
    "kind", [AlertKind.maasp_cleared, AlertKind.integrity_status_changed, "no_such_kind"]
)
def test_alerts_without_tasks(kind) -> None:
    assert task_for_alert(kind, 3, 17, TS, FACTS) is None


def test_alert_accepts_wire_spelling_and_custom_rules() -> None:
    rules = TaskRules(maasp_warning_due=timedelta(days=2))
    spec = task_for_alert("maasp_warning", 3, 17, TS, {}, rules)
    assert spec is not None
    assert spec.due_date == TS + timedelta(days=2)
    assert spec.description.endswith(".")


def test_alert_description_is_deterministic() -> None:
    reordered = dict(reversed(list(FACTS.items())))
    a = task_for_alert(AlertKind.maasp_exceeded, 3, 17, TS, FACTS)
    b = task_for_alert(AlertKind.maasp_exceeded, 3, 17, TS, reordered)
    assert a == b


def test_alert_without_annulus_targets_well() -> None:
    spec = task_for_alert(AlertKind.sap_detected, 3, None, TS, {"pressure_bar": 8.0})
    assert spec is not None
    assert spec.target == "well:3"
    assert "pressure 8.0 bar" in spec.description


# ---------------------------------------------------------------- failed tests


@pytest.mark.parametrize(
    ("element_type", "envelope", "priority"),
    [
        (ElementType.sssv, "primary", TaskPriority.critical),
        (ElementType.sssv, "secondary", TaskPriority.critical),
        (ElementType.packer, "primary", TaskPriority.critical),
        (ElementType.tree_valve, "secondary", TaskPriority.high),
        (ElementType.wellhead_seal, "secondary", TaskPriority.high),
    ],
)
def test_task_for_failed_test(element_type, envelope, priority) -> None:
    facts = {"test_type": "inflow", "leak_rate": "0.6 m3/min", "acceptance": "0.425 m3/min"}
    spec = task_for_failed_test(3, 5, element_type, envelope, "Upper valve", TS, facts)
    assert isinstance(spec, TaskSpec)
    assert spec.trigger_type is TriggerType.failed_test
    assert spec.priority is priority
    assert spec.due_date == TS + timedelta(days=7)
    assert (spec.target, spec.barrier_element_id, spec.annulus_id) == ("element:5", 5, None)
    assert "Repair or replace" in spec.description
    assert f"reassess the {envelope} envelope" in spec.description
    assert "leak rate 0.6 m3/min" in spec.description
    assert "Upper valve" in spec.title


def test_failed_test_rejects_unknown_envelope() -> None:
    with pytest.raises(ValueError):
        task_for_failed_test(3, 5, ElementType.casing, "outer", "x", TS, {})


# ---------------------------------------------------------------- integrity


FINDINGS = [
    Finding("envelope_failed", "critical", "envelope:primary", "primary envelope failed"),
    Finding("maasp_exceeded", "critical", "annulus:17", "A annulus pressure at 104% of MAASP"),
]


@pytest.mark.parametrize("old", [IntegrityStatus.green, IntegrityStatus.amber, None])
def test_turning_red_opens_critical_review(old) -> None:
    spec = task_for_integrity(3, old, IntegrityStatus.red, TS, FINDINGS)
    assert spec is not None
    assert spec.trigger_type is TriggerType.integrity_red
    assert spec.priority is TaskPriority.critical
    assert spec.target == "well:3"
    assert spec.due_date == TS + timedelta(hours=24)
    assert "primary envelope failed" in spec.description
    assert "104% of MAASP" in spec.description


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (IntegrityStatus.red, IntegrityStatus.red),
        (IntegrityStatus.green, IntegrityStatus.amber),
        (IntegrityStatus.red, IntegrityStatus.amber),
        (IntegrityStatus.amber, IntegrityStatus.green),
        (None, IntegrityStatus.green),
    ],
)
def test_no_review_unless_turning_red(old, new) -> None:
    assert task_for_integrity(3, old, new, TS, FINDINGS) is None


def test_integrity_accepts_finding_dicts() -> None:
    spec = task_for_integrity(3, "amber", "red", TS, [f.to_dict() for f in FINDINGS])
    assert spec is not None
    assert "primary envelope failed" in spec.description


# ---------------------------------------------------------------- periodic tests


def test_default_intervals() -> None:
    assert DEFAULT_TEST_INTERVAL_DAYS[ElementType.sssv] == 182
    assert DEFAULT_TEST_INTERVAL_DAYS[ElementType.tree_valve] == 182
    assert DEFAULT_TEST_INTERVAL_DAYS[ElementType.wellhead_seal] == 365
    assert DEFAULT_TEST_INTERVAL_DAYS[ElementType.annulus_valve] == 365
    assert set(DEFAULT_TEST_INTERVAL_DAYS) == set(ElementType)


def test_next_test_due() -> None:
    assert next_test_due(ElementType.sssv, TS) == TS + timedelta(days=182)
    assert next_test_due("wellhead_seal", TS) == TS + timedelta(days=365)
    assert next_test_due(ElementType.sssv, TS, interval_days=30) == TS + timedelta(days=30)
    rules = TaskRules(test_interval_days={ElementType.sssv: 90})
    assert next_test_due(ElementType.sssv, TS, rules) == TS + timedelta(days=90)
    assert next_test_due(ElementType.casing, TS, rules) == TS + timedelta(days=365)  # fallback
    assert next_test_due(ElementType.sssv, None) is None
    with pytest.raises(ValueError):
        next_test_due(ElementType.sssv, TS, interval_days=0)
    with pytest.raises(ValueError):
        TaskRules(test_interval_days={ElementType.sssv: 0})


def test_rules_interval_table_is_frozen() -> None:
    table = {ElementType.sssv: 90}
    rules = TaskRules(test_interval_days=table)
    table[ElementType.sssv] = 1
    assert rules.interval_days(ElementType.sssv) == 90
    with pytest.raises(TypeError):
        rules.test_interval_days[ElementType.sssv] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("due_in", "expected"),
    [
        (timedelta(days=30), None),
        (timedelta(days=14, seconds=1), None),
        (timedelta(days=14), TaskPriority.normal),
        (timedelta(days=1), TaskPriority.normal),
        (timedelta(0), TaskPriority.normal),
        (-timedelta(seconds=1), TaskPriority.high),
        (-timedelta(days=40), TaskPriority.high),
    ],
)
def test_reminder_for_element(due_in, expected) -> None:
    due = TS + due_in
    spec = reminder_for_element(5, 3, ElementType.sssv, "SSSV", due, TS)
    if expected is None:
        assert spec is None
        return
    assert spec is not None
    assert spec.trigger_type is TriggerType.test_due
    assert spec.priority is expected
    assert spec.due_date == due
    assert (spec.target, spec.barrier_element_id) == ("element:5", 5)
    assert due.isoformat() in spec.description
    assert ("overdue" in spec.description) == (expected is TaskPriority.high)


def test_reminder_window_configurable() -> None:
    rules = replace(DEFAULT_TASK_RULES, reminder_days=45)
    assert reminder_for_element(5, 3, "sssv", "SSSV", TS + timedelta(days=30), TS, rules)


def test_reminder_sweeps_are_noops_until_it_becomes_overdue() -> None:
    due = TS + timedelta(days=10)
    first = reminder_for_element(5, 3, ElementType.sssv, "SSSV", due, TS)
    assert first is not None
    task = OpenTask(first.priority, first.due_date, first.description)
    # the next day's sweep: nothing changed
    again = reminder_for_element(5, 3, ElementType.sssv, "SSSV", due, TS + timedelta(days=1))
    assert again is not None and merge(task, again) is None
    # past due: the same task escalates
    late = reminder_for_element(5, 3, ElementType.sssv, "SSSV", due, due + timedelta(hours=1))
    assert late is not None
    update = merge(task, late)
    assert update is not None
    assert update.priority is TaskPriority.high
    assert update.escalated is True
    assert update.due_date == due


# ---------------------------------------------------------------- dedupe and escalation


def spec(priority: TaskPriority, due_date: datetime, description: str = "d") -> TaskSpec:
    return TaskSpec(
        TriggerType.maasp_exceed,
        "annulus:17",
        3,
        17,
        None,
        priority,
        due_date,
        "title",
        description,
    )


def test_replay_is_noop() -> None:
    first = task_for_alert(AlertKind.maasp_exceeded, 3, 17, TS, FACTS)
    assert first is not None
    task = OpenTask(first.priority, first.due_date, first.description)
    replay = task_for_alert(AlertKind.maasp_exceeded, 3, 17, TS, FACTS)
    assert replay is not None
    assert merge(task, replay) is None


def test_worse_event_escalates() -> None:
    task = OpenTask(TaskPriority.high, TS + timedelta(days=7), "old")
    update = merge(task, spec(TaskPriority.critical, TS + timedelta(days=1), "new"))
    assert update == TaskUpdate(TaskPriority.critical, TS + timedelta(days=1), "new", True)


def test_better_event_does_not_lower_priority_or_postpone() -> None:
    task = OpenTask(TaskPriority.critical, TS + timedelta(days=1), "old")
    # milder and later, same text: nothing to do
    assert merge(task, spec(TaskPriority.high, TS + timedelta(days=7), "old")) is None
    # milder with new facts: text updates, priority and due stay
    update = merge(task, spec(TaskPriority.normal, TS + timedelta(days=7), "new"))
    assert update == TaskUpdate(TaskPriority.critical, TS + timedelta(days=1), "new", False)


def test_same_priority_earlier_due_pulls_in() -> None:
    task = OpenTask(TaskPriority.high, TS + timedelta(days=7), "d")
    update = merge(task, spec(TaskPriority.high, TS + timedelta(days=2), "d"))
    assert update == TaskUpdate(TaskPriority.high, TS + timedelta(days=2), "d", False)


def test_repeat_warning_with_new_numbers_updates_description() -> None:
    first = task_for_alert(AlertKind.maasp_warning, 3, 17, TS, {**FACTS, "utilisation": 0.82})
    later = task_for_alert(
        AlertKind.maasp_warning, 3, 17, TS + timedelta(days=1), {**FACTS, "utilisation": 0.91}
    )
    assert first is not None and later is not None
    update = merge(OpenTask(first.priority, first.due_date, first.description), later)
    assert update is not None
    assert update.due_date == first.due_date  # the earlier deadline stands
    assert "utilisation 91%" in update.description
    assert update.escalated is False


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (TaskPriority.low, TaskPriority.normal, True),
        (TaskPriority.high, TaskPriority.critical, True),
        (TaskPriority.normal, TaskPriority.critical, True),
        (TaskPriority.high, TaskPriority.high, False),
        (TaskPriority.critical, TaskPriority.high, False),
        ("normal", "high", True),
    ],
)
def test_is_escalation(old, new, expected: bool) -> None:
    assert is_escalation(old, new) is expected


# ---------------------------------------------------------------- daily findings


@pytest.mark.parametrize(
    ("kind", "trigger", "priority", "due", "says"),
    [
        (
            AlertKind.data_stale,
            TriggerType.data_stale,
            TaskPriority.high,
            timedelta(hours=24),
            "Restore the gauge",
        ),
        (
            AlertKind.maasp_missing,
            TriggerType.maasp_missing,
            TaskPriority.normal,
            timedelta(days=7),
            "critical points",
        ),
    ],
)
def test_missing_data_tasks(kind, trigger, priority, due, says) -> None:
    spec = task_for_alert(kind, 3, 17, TS, {"annulus_name": "B"})
    assert spec is not None
    assert (spec.trigger_type, spec.priority, spec.due_date) == (trigger, priority, TS + due)
    assert spec.target == "annulus:17" and "B annulus" in spec.title
    assert says in spec.description


@pytest.mark.parametrize("kind", [AlertKind.data_stale_cleared, AlertKind.maasp_missing_cleared])
def test_cleared_findings_open_no_task(kind) -> None:
    assert task_for_alert(kind, 3, 17, TS, {}) is None


def test_communication_task_names_both_annuli_and_is_one_per_pair() -> None:
    ab = task_for_alert(
        AlertKind.annulus_communication,
        3,
        18,
        TS,
        {
            "annulus_name": "B",
            "other_annulus_id": 17,
            "other_annulus_name": "A",
            "step_bar": -38.0,
            "response_bar": -7.5,
        },
    )
    ba = task_for_alert(
        AlertKind.annulus_communication,
        3,
        17,
        TS,
        {"annulus_name": "A", "other_annulus_id": 18, "other_annulus_name": "B"},
    )
    assert ab is not None and ba is not None
    assert ab.dedupe_key == ba.dedupe_key == (TriggerType.annulus_communication, "annuli:17-18")
    assert ab.priority is TaskPriority.high and ab.due_date == TS + timedelta(days=7)
    assert "B annulus" in ab.description and "A annulus" in ab.description
    assert "step -38.0 bar" in ab.description and "response -7.5 bar" in ab.description


def test_retest_task_states_the_pressure_of_the_last_test() -> None:
    spec = task_for_alert(
        AlertKind.diagnostic_test_due, 3, 17, TS, {"pressure_bar": 35.0, "test_pressure_bar": 20.0}
    )
    assert spec is not None and spec.trigger_type is TriggerType.diagnostic_test_due
    assert "pressure at the last diagnostic test 20.0 bar" in spec.description
