"""From a raw message on a source topic to the task it calls for (no I/O).

The rules themselves live in shared.domain.task_rules; this module only decodes the
message, picks the rule for the event type and hands it the event's facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.dead_letters import decode_failure_reason
from shared.contracts.enums import ElementType, TaskStatus, TestResult
from shared.domain.task_rules import (
    DEFAULT_TEST_INTERVAL_DAYS,
    TaskRules,
    TaskSpec,
    task_for_alert,
    task_for_failed_test,
    task_for_inconclusive_test,
    task_for_integrity,
)
from shared.infrastructure.settings import Settings

# The rule for each test result that calls for a task (a pass calls for none).
_TEST_RULES = {
    TestResult.failed: task_for_failed_test,
    TestResult.inconclusive: task_for_inconclusive_test,
}
FINDING_FACTS = (
    "test_pressure_bar",
    "last_good_reading",
    "step_bar",
    "response_bar",
    "other_annulus_id",
    "other_annulus_name",
)

SOURCE_TOPICS: tuple[str, ...] = (
    topics.ALERTS.name,
    topics.BARRIER_EVENTS.name,
    topics.INTEGRITY_SNAPSHOTS.name,
)


def rules_from_settings(settings: Settings) -> TaskRules:
    """The task rules with the operator's reminder lead time and test intervals."""
    intervals: dict[ElementType, int] = dict(DEFAULT_TEST_INTERVAL_DAYS)
    for name, days in settings.tasks_test_interval_days.items():
        try:
            intervals[ElementType(name)] = days
        except ValueError:
            raise ValueError(
                f"WIMS_TASKS_TEST_INTERVAL_DAYS: unknown element type {name!r}; "
                f"expected one of {', '.join(t.value for t in ElementType)}"
            ) from None
    try:
        return TaskRules(reminder_days=settings.tasks_reminder_days, test_interval_days=intervals)
    except ValueError as exc:
        raise ValueError(f"WIMS_TASKS_TEST_INTERVAL_DAYS: {exc}") from None


def spec_for_event(event: Any, rules: TaskRules) -> TaskSpec | None:
    """The task a decoded event calls for, or None (cleared alerts, passed tests, ...)."""
    if isinstance(event, ev.Alert):
        facts: dict[str, Any] = {
            "pressure_bar": event.pressure_bar,
            "maasp_bar": event.maasp_bar,
            "utilisation": event.utilisation,
            "limiting_point": event.limiting_point,
            "annulus_name": event.details.get("annulus_name"),
        }
        # The daily findings' own facts (services/tasks/findings.py), absent from other alerts.
        facts.update({k: event.details.get(k) for k in FINDING_FACTS})
        return task_for_alert(
            event.kind, event.well_id, event.annulus_id, event.ts, facts, rules=rules
        )
    if isinstance(event, ev.BarrierTestRecorded):
        rule = _TEST_RULES.get(event.result)
        if rule is None:
            return None  # a pass
        facts = {"test_type": event.test_type.value}
        if event.leak_rate is not None:
            facts["leak_rate"] = f"{event.leak_rate:g} {event.leak_rate_unit or ''}".strip()
        if event.pressure_applied_bar is not None:
            facts["test pressure"] = f"{event.pressure_applied_bar:.1f} bar"
        return rule(
            event.well_id,
            event.barrier_element_id,
            event.element_type,
            event.envelope_type,
            event.element_name,
            event.test_date,
            facts,
            rules=rules,
        )
    if isinstance(event, ev.IntegritySnapshot):
        return task_for_integrity(
            event.well_id,
            event.previous_status,
            event.overall_status,
            event.created_at,
            event.findings,
            rules=rules,
        )
    # ElementStatusChanged and anything else: no task of its own (a failed element shows
    # up as a failed test or in the integrity snapshot).
    return None


@dataclass(frozen=True)
class Prepared:
    """One distinct event of a batch that calls for a task."""

    event_id: UUID
    spec: TaskSpec
    index: int
    """Its position in the batch (the message to dead-letter should it fail)."""


@dataclass(frozen=True)
class Rejected:
    """A message that was logged and skipped, and why."""

    index: int
    reason: str
    """A dead-letter reason (shared.contracts.dead_letters): undecodable or invalid (not a valid
    event for the topic, or the rules refused its values)."""
    error: str


@dataclass(frozen=True)
class PreparedBatch:
    tasks: list[Prepared]
    rejected: list[Rejected]
    handled: int
    """Messages decoded and judged, whether or not they call for a task."""


def prepare_batch(topic: str, values: Sequence[bytes | None], rules: TaskRules) -> PreparedBatch:
    """Decode a batch and apply the rules. Repeats of one event id within the batch are
    kept once (the first), so one delivery burst cannot apply an event twice."""
    tasks: list[Prepared] = []
    rejected: list[Rejected] = []
    seen: set[UUID] = set()
    handled = 0
    for index, raw in enumerate(values):
        if raw is None:
            rejected.append(Rejected(index, "undecodable", "empty message (no value)"))
            continue
        try:
            event = ev.decode(topic, raw)
        except Exception as exc:  # pydantic ValidationError, JSON errors, unknown topic
            error = _short(exc)
            rejected.append(Rejected(index, decode_failure_reason(error), error))
            continue
        try:
            spec = spec_for_event(event, rules)
        except (ValueError, KeyError, TypeError) as exc:
            rejected.append(Rejected(index, "invalid", _short(exc)))
            continue
        handled += 1
        if spec is None or event.event_id in seen:
            continue
        seen.add(event.event_id)
        tasks.append(Prepared(event.event_id, spec, index))
    return PreparedBatch(tasks, rejected, handled)


def _short(exc: Exception, limit: int = 500) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def task_event(
    *,
    event_id: UUID,
    action: str,
    task_id: int,
    well_id: int,
    trigger_type: str,
    target: str | None,
    priority: str,
    status: str,
    due_date: datetime | None,
    title: str,
) -> ev.TaskEvent:
    return ev.TaskEvent(
        event_id=event_id,
        action=action,  # type: ignore[arg-type]
        task_id=task_id,
        well_id=well_id,
        trigger_type=trigger_type,  # type: ignore[arg-type]
        target=target,
        priority=priority,  # type: ignore[arg-type]
        status=status or TaskStatus.open,  # type: ignore[arg-type]
        due_date=due_date,
        title=title,
    )
