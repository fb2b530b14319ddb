"""The topic catalogue: every Kafka topic WIMS uses, its key, value and layout."""

from dataclasses import dataclass


def entity_key(entity_id: int) -> bytes:
    """The Kafka key of a well or an annulus: its id as ASCII, for every WIMS producer, so
    co-partitioned topics place one entity's events on the same partition."""
    return str(entity_id).encode("ascii")


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key: str
    value: str
    compacted: bool = False
    doc: str = ""


READINGS = Topic("wims.readings", "annulus_id", "Reading", doc="validated, bar and degC, UTC")
READINGS_REJECTED = Topic(
    "wims.readings.rejected",
    "source",
    "RejectedReading",
    doc="readings refused by ingest validation, with the field and reason",
)
ANNULUS_CONFIG = Topic("wims.annulus-config", "annulus_id", "AnnulusConfig", compacted=True)
WELL_CONFIG = Topic("wims.well-config", "well_id", "WellConfig", compacted=True)
MAASP_RESULTS = Topic("wims.maasp-results", "annulus_id", "MaaspResult")
ANNULUS_STATE = Topic("wims.annulus-state", "well_id", "AnnulusState")
ALERTS = Topic("wims.alerts", "well_id", "Alert")
BARRIER_EVENTS = Topic("wims.barrier-events", "well_id", "BarrierEvent")
INTEGRITY_SNAPSHOTS = Topic("wims.integrity-snapshots", "well_id", "IntegritySnapshot")
TASK_EVENTS = Topic("wims.task-events", "well_id", "TaskEvent")
DEAD_LETTERS = Topic(
    "wims.dead-letters",
    "source topic name",
    "DeadLetter JSON (shared.contracts.dead_letters): source position, key, value, reason, error",
    doc="messages a stream worker could not process, kept for inspection and replay",
)

# Every topic has the same partition count (Settings.topic_partitions): readings and
# annulus-config must be co-partitioned for the MAASP join, and the integrity worker joins
# four well-keyed topics in one table, so one count everywhere is the simple, safe rule.
ALL_TOPICS: tuple[Topic, ...] = (
    READINGS,
    READINGS_REJECTED,
    ANNULUS_CONFIG,
    WELL_CONFIG,
    MAASP_RESULTS,
    ANNULUS_STATE,
    ALERTS,
    BARRIER_EVENTS,
    INTEGRITY_SNAPSHOTS,
    TASK_EVENTS,
    DEAD_LETTERS,
)
