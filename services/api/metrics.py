"""The api service's metrics, defined once. Labels are low-cardinality: never an id."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "wims_api_requests_total",
    "HTTP requests answered, by route template (relative to /api/v1) and status class",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "wims_api_request_duration_seconds",
    "HTTP request latency by route template",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOGIN_FAILURES = Counter("wims_api_login_failures_total", "Refused logins", ["reason"])
OUTBOX_PUBLISHED = Counter(
    "wims_api_outbox_published_total", "Outbox records published to Kafka", ["topic"]
)
OUTBOX_ERRORS = Counter(
    "wims_api_outbox_publish_errors_total", "Relay attempts that failed (Kafka unreachable...)"
)
OUTBOX_PENDING = Gauge(
    "wims_api_outbox_pending_records", "Unsent outbox records seen by the last relay pass"
)
ALERTS_STORED = Counter(
    "wims_api_alerts_stored_total", "Alerts from wims.alerts written to the alert table"
)
ALERTS_BAD = Counter(
    "wims_api_alerts_undecodable_total", "Messages on wims.alerts that could not be decoded"
)
SSE_CLIENTS = Gauge("wims_api_sse_clients", "Open live-alert (SSE) streams")
SSE_KAFKA_CONSUMERS = Gauge(
    "wims_api_sse_kafka_consumers",
    "Kafka consumers the live alert streams hold: the process's one shared feed, plus a "
    "catch-up reader per client resuming from before the replay buffer",
)
SSE_CLOSED = Counter(
    "wims_api_sse_closed_total",
    "Live alert streams the server ended: slow_client (fell behind its mailbox), "
    "unauthorized (token expired or revoked, user deactivated), forbidden (role)",
    ["reason"],
)
SSE_REFUSED = Counter(
    "wims_api_sse_refused_total",
    "Live alert streams refused with 429, by the cap reached (user, process)",
    ["cap"],
)
FLEET_WELL_ROWS = Counter(
    "wims_api_fleet_well_rows_total",
    "GET /fleet answers by where their well-level rows came from: memory (nothing changed "
    "since they were read) or database (read again: a change was notified, a task fell due, "
    "the rows reached their maximum age, or no change notifications could be heard)",
    ["source"],
)
