"""Prometheus metrics of the MAASP worker, defined once (labels are low-cardinality only)."""

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter(
    "wims_maasp_readings_total",
    "Readings taken off wims.readings and judged, by quality",
    ["quality"],
)
READINGS_LATE = Counter(
    "wims_maasp_readings_late_total",
    "Readings not newer than the newest already judged for their annulus (historian "
    "replays, or a replay after a restart): counted, but they change no level",
)
READINGS_UNCONFIGURED = Counter(
    "wims_maasp_readings_unconfigured_total",
    "Readings for an annulus with no config (or a deleted one): level unknown",
)
LEVEL_READINGS = Counter(
    "wims_maasp_level_readings_total",
    "Usable in-order readings by the utilisation level they put their annulus at",
    ["level"],
)
ANNULI = Gauge(
    "wims_maasp_annuli",
    "Annuli held by this worker, by their current utilisation level",
    ["level"],
)
ALERTS = Counter(
    "wims_maasp_alerts_total",
    "Alerts raised on wims.alerts, by kind",
    ["kind"],
)
STATES = Counter(
    "wims_maasp_states_total",
    "AnnulusState events emitted on wims.annulus-state, by reason",
    ["reason"],
)
LAG = Histogram(
    "wims_maasp_processing_lag_seconds",
    "Wall-clock now minus the event time of the newest reading of each batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
BATCH_SIZE = Histogram(
    "wims_maasp_batch_size_readings",
    "Readings per batch taken from wims.readings",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 50000),
)
BATCH_SECONDS = Histogram(
    "wims_maasp_batch_duration_seconds",
    "Time to judge one batch, emit its events and store its state",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DEAD_LETTERS = Counter(
    "wims_maasp_dead_letters_total",
    "Messages the worker could not process, sent to wims.dead-letters, by source topic",
    ["topic"],
)
CONFIGS = Counter(
    "wims_maasp_configs_total",
    "AnnulusConfig events by outcome (applied, deleted, duplicate, stale, invalid)",
    ["outcome"],
)
MAASP_RESULTS_NOT_STORED = Counter(
    "wims_maasp_results_not_stored_total",
    "MAASP results whose maasp_result row could not be written because the annulus or its "
    "limiting critical point is not in the database (the result is still used and emitted)",
)
