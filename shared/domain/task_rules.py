"""Rules from events (alerts, failed tests, integrity changes, due tests) to tasks.

Pure domain code: no I/O. A rule returns a TaskSpec, what the task should say; the service
keys open tasks by (trigger_type, target) and calls merge() when one is already open, so a
repeated or replayed event updates that task instead of opening another.

Descriptions are built only from the event's facts, in a fixed order, never from the
clock: the same event replayed gives the same text, and merge() then reports no change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from shared.contracts.enums import (
    PRIORITY_RANK,
    AlertKind,
    ElementType,
    EnvelopeType,
    IntegrityStatus,
    TaskPriority,
    TriggerType,
)

# Periodic test interval by element type (docs/domain.md "Task rules", WIMS defaults): SSSV
# and tree valves every 6 months (API RP 14B / 30 CFR 250.880 for the SSSV), wellhead seals
# and everything else, annulus valves included, every 12 months.
DEFAULT_TEST_INTERVAL_DAYS: Mapping[ElementType, int] = MappingProxyType(
    {t: 182 if t in (ElementType.sssv, ElementType.tree_valve) else 365 for t in ElementType}
)


@dataclass(frozen=True)
class TaskRules:
    """Configurable timings and priorities of the rules (WIMS defaults)."""

    maasp_exceeded_due: timedelta = timedelta(hours=24)
    maasp_warning_due: timedelta = timedelta(days=7)
    # 30 CFR 250.520-523: a diagnostic test within 30 days of the pressure being seen.
    sap_due: timedelta = timedelta(days=30)
    diagnostic_test_due: timedelta = timedelta(days=30)
    # WIMS defaults for the daily findings: restore a silent gauge within a day, enter a
    # MAASP within a week, investigate a communication between annuli within a week.
    data_stale_due: timedelta = timedelta(hours=24)
    maasp_missing_due: timedelta = timedelta(days=7)
    annulus_communication_due: timedelta = timedelta(days=7)
    failed_test_due: timedelta = timedelta(days=7)
    integrity_red_due: timedelta = timedelta(hours=24)
    reminder_days: int = 14
    """A periodic test this many days ahead (or fewer) gets a reminder task."""
    test_interval_days: Mapping[ElementType, int] = field(
        default_factory=lambda: DEFAULT_TEST_INTERVAL_DAYS
    )
    critical_element_types: frozenset[ElementType] = frozenset({ElementType.sssv})
    """A failed test on these is critical in either envelope: the SSSV is the last
    automatic shut-off downhole."""

    def __post_init__(self) -> None:
        if self.reminder_days < 0:
            raise ValueError(f"reminder_days must not be negative, got {self.reminder_days}")
        bad = {t: d for t, d in self.test_interval_days.items() if d <= 0}
        if bad:
            raise ValueError(f"test intervals must be positive days, got {bad}")
        # Freeze a caller's dict so the rules cannot change under a running service.
        object.__setattr__(
            self,
            "test_interval_days",
            MappingProxyType({ElementType(t): d for t, d in self.test_interval_days.items()}),
        )

    def interval_days(self, element_type: ElementType) -> int:
        # A type missing from a partial custom table falls back to the WIMS default.
        et = ElementType(element_type)
        return self.test_interval_days.get(et, DEFAULT_TEST_INTERVAL_DAYS[et])


DEFAULT_TASK_RULES = TaskRules()


@dataclass(frozen=True)
class TaskSpec:
    """A task a rule asks for. target is the dedupe subject: "annulus:17", "element:5",
    "well:3"."""

    trigger_type: TriggerType
    target: str
    well_id: int
    annulus_id: int | None
    barrier_element_id: int | None
    priority: TaskPriority
    due_date: datetime
    title: str
    description: str

    @property
    def dedupe_key(self) -> tuple[TriggerType, str]:
        """One open task per (trigger, target)."""
        return (self.trigger_type, self.target)


# --------------------------------------------------------------------------- facts text

# Known facts in the order they are written, with how to write them.
_FACT_FORMATS: tuple[tuple[str, str], ...] = (
    ("pressure_bar", "pressure {:.1f} bar"),
    ("maasp_bar", "MAASP {:.1f} bar"),
    ("utilisation", "utilisation {:.0%}"),
    ("limiting_point", "limiting point {}"),
    ("test_type", "test type {}"),
    ("leak_rate", "leak rate {}"),
    ("acceptance", "acceptance {}"),
    ("test_pressure_bar", "pressure at the last diagnostic test {:.1f} bar"),
    ("last_good_reading", "last good reading {}"),
    ("step_bar", "step {:+.1f} bar"),
    ("response_bar", "response {:+.1f} bar"),
)
_KNOWN_FACTS = {k for k, _ in _FACT_FORMATS} | {
    "annulus_name",
    "element_name",
    "other_annulus_id",
    "other_annulus_name",
}


def _format_facts(facts: Mapping[str, Any]) -> str:
    """The numbers behind a task, in a fixed order (known facts first, the rest by name)."""
    parts: list[str] = []
    for key, fmt in _FACT_FORMATS:
        value = facts.get(key)
        if value is None:
            continue
        try:
            parts.append(fmt.format(value))
        except (TypeError, ValueError):
            # A string where a number was expected: show it as given rather than fail.
            parts.append(f"{key} {value}")
    for key in sorted(k for k in facts if k not in _KNOWN_FACTS):
        if facts[key] is not None:
            parts.append(f"{key} {facts[key]}")
    return ", ".join(parts)


def _with_facts(text: str, facts: Mapping[str, Any]) -> str:
    numbers = _format_facts(facts)
    return f"{text} ({numbers})." if numbers else f"{text}."


# --------------------------------------------------------------------------- alerts


def task_for_alert(
    kind: AlertKind | str,
    well_id: int,
    annulus_id: int | None,
    ts: datetime,
    facts: Mapping[str, Any],
    rules: TaskRules = DEFAULT_TASK_RULES,
) -> TaskSpec | None:
    """The task an annulus alert calls for, or None (maasp_cleared and other kinds).

    facts may carry pressure_bar, maasp_bar, utilisation (fraction), limiting_point,
    annulus_name; any present are written into the description. A cleared alert does not
    close the open task: someone still has to find out why the pressure rose.
    """
    try:
        kind = AlertKind(kind)
    except ValueError:
        return None
    target = f"annulus:{annulus_id}" if annulus_id is not None else f"well:{well_id}"
    name = facts.get("annulus_name")
    if name:
        where = f"{name} annulus"
    elif annulus_id is not None:
        where = f"annulus {annulus_id}"
    else:
        where = "annulus"
    on = f"{where}, well {well_id}"

    if kind is AlertKind.maasp_exceeded:
        trigger, priority, due = (
            TriggerType.maasp_exceed,
            TaskPriority.critical,
            rules.maasp_exceeded_due,
        )
        title = f"MAASP exceeded: {on}"
        text = (
            f"Annulus pressure at or above MAASP on {on}. Bring the annulus below MAASP "
            "(bleed down within procedure) and find the source of the pressure"
        )
    elif kind is AlertKind.maasp_warning:
        trigger, priority, due = (
            TriggerType.maasp_warning,
            TaskPriority.high,
            rules.maasp_warning_due,
        )
        title = f"MAASP warning: {on}"
        text = (
            f"Annulus pressure at warning level on {on}. Review the trend, confirm the "
            "MAASP and operating limit, and plan action before MAASP is reached"
        )
    elif kind is AlertKind.sap_detected:
        trigger, priority, due = TriggerType.sap_detected, TaskPriority.high, rules.sap_due
        title = f"Sustained annulus pressure: {on}"
        text = (
            f"Sustained annulus pressure detected on {on}. Run a bleed-down/build-up "
            "diagnostic test to find the source and the leak path"
        )
    elif kind is AlertKind.diagnostic_test_due:
        trigger, priority, due = (
            TriggerType.diagnostic_test_due,
            TaskPriority.high,
            rules.diagnostic_test_due,
        )
        title = f"Diagnostic test due: {on}"
        text = (
            f"Annulus pressure calls for a diagnostic test on {on}. Run a bleed-down/"
            "build-up diagnostic test and record the result"
        )
    elif kind in _DAILY_FINDINGS:
        trigger, priority, due, title, text, target = _daily_finding(
            kind, annulus_id, target, on, facts, rules
        )
    else:
        return None
    return TaskSpec(
        trigger_type=trigger,
        target=target,
        well_id=well_id,
        annulus_id=annulus_id,
        barrier_element_id=None,
        priority=priority,
        due_date=ts + due,
        title=title,
        description=_with_facts(text, facts),
    )


_DAILY_FINDINGS = frozenset(
    {AlertKind.data_stale, AlertKind.maasp_missing, AlertKind.annulus_communication}
)


def _daily_finding(
    kind: AlertKind,
    annulus_id: int | None,
    target: str,
    on: str,
    facts: Mapping[str, Any],
    rules: TaskRules,
) -> tuple[TriggerType, TaskPriority, timedelta, str, str, str]:
    """Trigger, priority, time allowed, title, text and target of a daily-finding task."""
    if kind is AlertKind.data_stale:
        return (
            TriggerType.data_stale,
            TaskPriority.high,
            rules.data_stale_due,
            f"No data: {on}",
            f"The SCADA tag of {on} has sent no good reading. Restore the gauge or its "
            "link; until then the annulus is not monitored",
            target,
        )
    if kind is AlertKind.maasp_missing:
        return (
            TriggerType.maasp_missing,
            TaskPriority.normal,
            rules.maasp_missing_due,
            f"No MAASP: {on}",
            f"The {on} has no MAASP. Enter (or accept) its critical points so its pressure "
            "can be judged",
            target,
        )
    other_id = facts.get("other_annulus_id")
    if annulus_id is not None and other_id is not None:
        # One task per pair of annuli, whichever of the two was seen answering the other.
        lo, hi = sorted((int(annulus_id), int(other_id)))
        target = f"annuli:{lo}-{hi}"
    other_name = facts.get("other_annulus_name")
    other = f"{other_name} annulus" if other_name else f"annulus {other_id}"
    return (
        TriggerType.annulus_communication,
        TaskPriority.high,
        rules.annulus_communication_due,
        f"Annulus communication: {on}",
        f"The {on} answers pressure changes of the {other}: the barrier between them may "
        "leak. Confirm with a bleed-down/build-up test and review both MAASPs",
        target,
    )


# --------------------------------------------------------------------------- tests


def _key_element(
    element_type: ElementType | str, envelope: EnvelopeType | str, name: str, rules: TaskRules
) -> tuple[bool, str, EnvelopeType]:
    """Whether an element is one whose loss leaves the well on its secondary barrier (an SSSV,
    rules.critical_element_types, or any primary-envelope element), its label in a task's
    text, and its envelope: what the failed- and inconclusive-test rules both weigh."""
    et = ElementType(element_type)
    env = EnvelopeType(envelope)
    key = et in rules.critical_element_types or env is EnvelopeType.primary
    return key, f"{name} ({et.value}, {env.value} envelope)", env


def task_for_failed_test(
    well_id: int,
    element_id: int,
    element_type: ElementType | str,
    envelope: EnvelopeType | str,
    element_name: str,
    ts: datetime,
    facts: Mapping[str, Any],
    rules: TaskRules = DEFAULT_TASK_RULES,
) -> TaskSpec:
    """A failed barrier test: repair or replace the element and reassess its envelope.

    Critical for an SSSV (rules.critical_element_types) or any primary-envelope element,
    whose failure leaves the well on its secondary barrier; high otherwise.
    """
    critical, label, env = _key_element(element_type, envelope, element_name, rules)
    return TaskSpec(
        trigger_type=TriggerType.failed_test,
        target=f"element:{element_id}",
        well_id=well_id,
        annulus_id=None,
        barrier_element_id=element_id,
        priority=TaskPriority.critical if critical else TaskPriority.high,
        due_date=ts + rules.failed_test_due,
        title=f"Failed barrier test: {element_name}, well {well_id}",
        description=_with_facts(
            f"Barrier test failed on {label}, well {well_id}. Repair or replace the element, "
            f"retest it and reassess the {env.value} envelope",
            facts,
        ),
    )


def task_for_inconclusive_test(
    well_id: int,
    element_id: int,
    element_type: ElementType | str,
    envelope: EnvelopeType | str,
    element_name: str,
    ts: datetime,
    facts: Mapping[str, Any],
    rules: TaskRules = DEFAULT_TASK_RULES,
) -> TaskSpec:
    """An inconclusive barrier test: the element keeps its status, but its last test proves
    nothing, so it must be tested again within rules.failed_test_due.

    High for an SSSV or a primary-envelope element (the same elements whose failure is
    critical), normal otherwise: nothing is known to have failed. One open task per element
    (target element:N); a second inconclusive test updates it.
    """
    important, label, _ = _key_element(element_type, envelope, element_name, rules)
    return TaskSpec(
        trigger_type=TriggerType.inconclusive_test,
        target=f"element:{element_id}",
        well_id=well_id,
        annulus_id=None,
        barrier_element_id=element_id,
        priority=TaskPriority.high if important else TaskPriority.normal,
        due_date=ts + rules.failed_test_due,
        title=f"Retest barrier element: {element_name}, well {well_id}",
        description=_with_facts(
            f"Barrier test of {label}, well {well_id} was inconclusive; the element keeps its "
            "status. Retest it",
            facts,
        ),
    )


def next_test_due(
    element_type: ElementType | str,
    last_tested_at: datetime | None,
    rules: TaskRules = DEFAULT_TASK_RULES,
    interval_days: int | None = None,
) -> datetime | None:
    """When the next periodic test is due: last test + interval.

    interval_days overrides the rules (an element-specific interval). None when the element
    has never been tested: there is no date to count from, and such an element's status is
    unknown, which already degrades its envelope.
    """
    if interval_days is not None and interval_days <= 0:
        raise ValueError(f"interval_days must be positive, got {interval_days}")
    if last_tested_at is None:
        return None
    days = interval_days if interval_days is not None else rules.interval_days(element_type)
    return last_tested_at + timedelta(days=days)


def reminder_for_element(
    element_id: int,
    well_id: int,
    element_type: ElementType | str,
    name: str,
    next_due: datetime,
    now: datetime,
    rules: TaskRules = DEFAULT_TASK_RULES,
) -> TaskSpec | None:
    """A test_due task when a periodic test is close or overdue, else None.

    Due within rules.reminder_days (a due time of exactly now included): normal. Overdue
    (now after next_due): high; the daily sweep sends this to the same open task, so merge()
    escalates it. due_date is the test's due time in both cases, so the task shows the real
    deadline. The text depends only on the state (due soon / overdue), not on now, so
    repeated sweeps are no-ops.
    """
    et = ElementType(element_type)
    overdue = now > next_due
    if not overdue and next_due - now > timedelta(days=rules.reminder_days):
        return None
    due_text = next_due.isoformat()
    label = f"{name} ({et.value}), well {well_id}"
    if overdue:
        priority = TaskPriority.high
        title = f"Barrier test overdue: {name}, well {well_id}"
        text = (
            f"Periodic test of {label} was due {due_text} and is overdue; the element counts "
            "as degraded until it is tested"
        )
    else:
        priority = TaskPriority.normal
        title = f"Barrier test due: {name}, well {well_id}"
        text = f"Periodic test of {label} is due {due_text}"
    return TaskSpec(
        trigger_type=TriggerType.test_due,
        target=f"element:{element_id}",
        well_id=well_id,
        annulus_id=None,
        barrier_element_id=element_id,
        priority=priority,
        due_date=next_due,
        title=title,
        description=f"{text} (interval {rules.interval_days(et)} days).",
    )


# --------------------------------------------------------------------------- integrity


def task_for_integrity(
    well_id: int,
    old_status: IntegrityStatus | str | None,
    new_status: IntegrityStatus | str,
    ts: datetime,
    findings: Iterable[Any],
    rules: TaskRules = DEFAULT_TASK_RULES,
) -> TaskSpec | None:
    """A critical review when a well turns red (old_status None: first assessment).

    Staying red or any other change gives None: the open review task already covers it,
    and amber conditions have their own alert tasks. findings are integrity Findings (or
    anything with code/message, or mappings with those keys); their messages go into the
    description so the reviewer starts from the reasons.
    """
    new = IntegrityStatus(new_status)
    old = IntegrityStatus(old_status) if old_status is not None else None
    if new is not IntegrityStatus.red or old is IntegrityStatus.red:
        return None
    reasons = [_finding_text(f) for f in findings]
    why = "; ".join(r for r in reasons if r) or "no findings recorded"
    was = old.value if old is not None else "not assessed"
    return TaskSpec(
        trigger_type=TriggerType.integrity_red,
        target=f"well:{well_id}",
        well_id=well_id,
        annulus_id=None,
        barrier_element_id=None,
        priority=TaskPriority.critical,
        due_date=ts + rules.integrity_red_due,
        title=f"Integrity red: review well {well_id}",
        description=(
            f"Well {well_id} integrity turned red (was {was}). Review the barriers, decide "
            f"on shut-in or mitigation and update the risk assessment. Why: {why}."
        ),
    )


def _finding_text(finding: Any) -> str:
    if isinstance(finding, Mapping):
        return str(finding.get("message") or finding.get("code") or "")
    return str(getattr(finding, "message", None) or getattr(finding, "code", None) or finding)


# --------------------------------------------------------------------------- dedupe


@dataclass(frozen=True)
class OpenTask:
    """The parts of an already open task that a repeated event may change."""

    priority: TaskPriority
    due_date: datetime
    description: str


@dataclass(frozen=True)
class TaskUpdate:
    """New values for an open task; escalated says the priority went up (notify)."""

    priority: TaskPriority
    due_date: datetime
    description: str
    escalated: bool


def is_escalation(old: TaskPriority | str, new: TaskPriority | str) -> bool:
    """True when new is a worse (higher) priority than old."""
    return PRIORITY_RANK[TaskPriority(new)] > PRIORITY_RANK[TaskPriority(old)]


def merge(existing: OpenTask, new: TaskSpec) -> TaskUpdate | None:
    """Fold a repeated event into the open task of the same (trigger, target).

    Priority only goes up (a milder repeat never lowers it), due_date becomes the earlier of
    the two (a new event never buys more time), description takes the latest facts.
    None when nothing would change, so replayed events are no-ops.
    """
    escalated = is_escalation(existing.priority, new.priority)
    priority = TaskPriority(new.priority) if escalated else TaskPriority(existing.priority)
    due_date = min(existing.due_date, new.due_date)
    description = new.description
    if (
        priority == existing.priority
        and due_date == existing.due_date
        and description == existing.description
    ):
        return None
    return TaskUpdate(
        priority=priority, due_date=due_date, description=description, escalated=escalated
    )
