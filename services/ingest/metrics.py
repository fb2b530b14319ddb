"""The ingest service's metrics, defined once. Labels are low-cardinality: never an id."""

from prometheus_client import Counter, Gauge, Histogram

READINGS_ACCEPTED = Counter(
    "wims_ingest_readings_accepted_total", "Readings acknowledged by Kafka and answered 202"
)
READINGS_REJECTED = Counter(
    "wims_ingest_readings_rejected_total",
    "Refused readings by reason code (shared.domain.readings.REASON_*)",
    ["reason"],
)
REQUEST_SECONDS = Histogram(
    "wims_ingest_request_duration_seconds",
    "HTTP request latency by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
KAFKA_PRODUCE_SECONDS = Histogram(
    "wims_ingest_kafka_produce_seconds",
    "From handing a request's readings to the producer until Kafka acknowledged all of them",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
KAFKA_FAILURES = Counter(
    "wims_ingest_kafka_failures_total", "Pushes answered 503 because Kafka did not acknowledge"
)
DEAD_LETTER_FAILURES = Counter(
    "wims_ingest_dead_letter_failures_total",
    "Rejected readings that could not be written to wims.readings.rejected",
)
AUTH_FAILURES = Counter("wims_ingest_auth_failures_total", "Refused pushes by reason", ["reason"])
SINK_LAG = Gauge(
    "wims_ingest_sink_lag_records", "wims.readings records not yet written by the sink"
)
SINK_ROWS = Counter(
    "wims_ingest_sink_rows_written_total", "New annulus_measurement rows committed by the sink"
)
SINK_UNDECODABLE = Counter(
    "wims_ingest_sink_undecodable_total", "Messages on wims.readings the sink could not decode"
)
SINK_DROPPED = Counter(
    "wims_ingest_sink_dropped_total",
    "Readings skipped by the sink because their annulus no longer exists",
)
MAINTENANCE_FAILURES = Counter(
    "wims_measurement_maintenance_failures_total",
    "Measurement maintenance runs (partitions, retention) that failed",
)
MAINTENANCE_LAST_SUCCESS = Gauge(
    "wims_measurement_maintenance_last_success_timestamp_seconds",
    "When measurement maintenance last completed (Unix time)",
)
PARTITIONS_COVERED_UNTIL = Gauge(
    "wims_measurement_partitions_covered_until_timestamp_seconds",
    "End of the weekly annulus_measurement partitions prepared from this week on (Unix time)",
)
