"""The tasks service's metrics, defined once. Labels are low-cardinality: never a well,
annulus, element or task id."""

from prometheus_client import Counter, Histogram

TASKS_CREATED = Counter(
    "wims_tasks_created_total",
    "Auto-generated tasks opened, by trigger type",
    ["trigger_type"],
)
TASKS_UPDATED = Counter(
    "wims_tasks_updated_total",
    "Open auto tasks updated by a repeated event without a priority change, by trigger type",
    ["trigger_type"],
)
TASKS_ESCALATIONS = Counter(
    "wims_tasks_escalations_total",
    "Open auto tasks whose priority went up, by trigger type",
    ["trigger_type"],
)
EVENTS_PROCESSED = Counter(
    "wims_tasks_events_processed_total",
    "Events read from a source topic and handled (including those that call for no task)",
    ["topic"],
)
EVENTS_REPLAYED = Counter(
    "wims_tasks_events_replayed_total",
    "Events already applied before (a redelivery or replay), recognised by event id and skipped",
    ["topic"],
)
EVENTS_FAILED = Counter(
    "wims_tasks_events_failed_total",
    "Events dead-lettered: undecodable, invalid for the rules, or unprocessable (refused by the database)",
    ["topic", "reason"],
)
SWEEP_DURATION = Histogram(
    "wims_tasks_sweep_duration_seconds",
    "Duration of one reminder/escalation sweep",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SWEEP_FAILURES = Counter(
    "wims_tasks_sweep_failures_total",
    "Timer sweeps that failed (logged; the next one runs on schedule)",
)
TASK_EVENTS_NOT_SENT = Counter(
    "wims_tasks_task_events_not_sent_total",
    "TaskEvents the broker refused for good (the tasks themselves are committed)",
)
