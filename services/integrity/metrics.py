"""The integrity worker's Prometheus metrics, defined once (labels never carry a well id)."""

from prometheus_client import Counter, Gauge, Histogram

SNAPSHOTS_WRITTEN = Counter(
    "wims_integrity_snapshots_written_total",
    "Integrity snapshots inserted into integrity_snapshot (a replay that inserts nothing "
    "is not counted)",
    ["status"],
)
STATUS_ALERTS = Counter(
    "wims_integrity_status_alerts_total",
    "integrity_status_changed alerts emitted, by the new colour",
    ["status"],
)
WELLS = Gauge(
    "wims_integrity_wells",
    "Wells assessed by this worker (its partitions), by current colour",
    ["status"],
)
EVENTS_PROCESSED = Counter(
    "wims_integrity_events_processed_total",
    "Input events folded into the per-well state, by topic",
    ["topic"],
)
EVENTS_FAILED = Counter(
    "wims_integrity_events_failed_total",
    "Input events dead-lettered (wims.dead-letters) because they could not be decoded or folded, by topic and reason",
    ["topic", "reason"],
)
REEVALUATION_SECONDS = Histogram(
    "wims_integrity_reevaluation_seconds",
    "Time of one periodic re-evaluation of every well this worker owns",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
