"""One source of truth for configuration: environment variables prefixed ``WIMS_``."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JWT_SECRET = "development-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WIMS_", env_file=None, extra="ignore")

    environment: str = Field("development", description="development, test or production")
    log_level: str = "INFO"

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_port: int = 9092
    kafka_version: str = "4.1.1"
    topic_partitions: int = Field(6, ge=1, description="partitions of every wims.* topic")
    kafka_session_timeout_s: float = Field(
        10.0,
        ge=6,
        description="consumer group session timeout of the stream workers: how soon a killed "
        "worker's partitions move to another (faust's own default is 60 s)",
    )

    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset means the project-local cluster"
    )
    pg_port: int = 5433

    api_port: int = 8000
    ingest_port: int = 8001
    maasp_port: int = 8002
    integrity_port: int = 8003
    tasks_port: int = 8004
    bind_host: str = "127.0.0.1"

    integrity_reevaluate_seconds: float = Field(
        60.0, gt=0, description="how often the integrity worker re-evaluates every well"
    )
    integrity_risk_matrix_refresh_seconds: float = Field(
        60.0, gt=0, description="how long the integrity worker caches the risk matrix"
    )

    run_dir: Path = PROJECT_ROOT / ".run"

    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_ttl_minutes: int = 60

    # Tasks service (WIMS defaults; DOMAIN.md "Barrier tests").
    tasks_sweep_seconds: float = Field(
        300.0, gt=0, description="how often the reminder/escalation sweep runs"
    )
    tasks_reminder_days: int = Field(
        14, ge=0, description="a periodic barrier test this many days ahead gets a reminder"
    )
    tasks_test_interval_days: dict[str, int] = Field(
        default_factory=dict,
        description='periodic test interval by element type, e.g. {"sssv": 182}; '
        "types not named keep the WIMS default",
    )
    tasks_batch_size: int = Field(200, ge=1, description="events per database transaction")
    tasks_batch_seconds: float = Field(
        0.5, gt=0, description="longest wait to fill a batch before processing it"
    )
    tasks_ledger_days: int = Field(
        30, ge=1, description="days an applied event id is remembered for replay detection"
    )

    # maasp worker: readings are judged in batches (bulk getmany) so numpy does the work.
    maasp_batch_size: int = Field(50000, ge=1, description="most readings judged in one batch")
    maasp_batch_within_s: float = Field(
        0.05, gt=0, description="longest wait to fill a batch (adds to alert latency)"
    )
    maasp_heartbeat_s: float = Field(
        5.0, ge=0, description="event-time seconds between AnnulusState heartbeats per annulus"
    )

    # api service: login throttling (in-process sliding window of failed attempts)
    login_max_failures_per_account: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(20, ge=1)
    login_window_s: float = Field(300.0, gt=0, description="sliding window of failed logins")
    # api service: transactional outbox relay and live alerts
    outbox_poll_interval_s: float = Field(1.0, gt=0)
    outbox_batch_size: int = Field(500, ge=1)
    outbox_max_backoff_s: float = Field(10.0, gt=0)
    sse_heartbeat_s: float = Field(15.0, gt=0, description="comment lines keep proxies open")
    api_max_page_size: int = Field(500, ge=1)
    api_user_cache_s: float = Field(
        5.0,
        ge=0,
        description="how long an API process reuses a user it read (role, active); changes "
        "through this process apply at once, others within this; 0: read on every request",
    )

    # ingest service (services/ingest/README section in its app docstring)
    ingest_max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="largest JSON/NDJSON body; larger: 413"
    )
    ingest_max_records: int = Field(
        100_000, ge=10_000, description="most readings in one JSON/NDJSON request; more: 413"
    )
    ingest_kafka_timeout_s: float = Field(
        10.0, gt=0, description="longest wait for Kafka to acknowledge a push before a 503"
    )
    ingest_retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503")
    ingest_linger_ms: int = Field(5, ge=0, description="producer linger (batching)")
    ingest_max_batch_bytes: int = Field(
        512 * 1024, ge=16384, le=1_000_000, description="producer record batch size"
    )
    ingest_auth_cache_s: float = Field(
        5.0, ge=0, description="API key cache TTL: a revoked key stops working within it"
    )
    ingest_lookup_refresh_s: float = Field(
        30.0, gt=0, description="periodic reload of annuli and SCADA tags"
    )
    ingest_lookup_miss_refresh_s: float = Field(
        1.0, ge=0, description="least time between reloads caused by an unknown tag/annulus"
    )
    ingest_csv_chunk_records: int = Field(
        5000, ge=1, description="CSV rows validated and produced per chunk"
    )
    ingest_max_reported_rejections: int = Field(
        10_000, ge=1, description="CSV answers list at most this many rejected rows"
    )
    ingest_sink_enabled: bool = Field(
        True, description="run the wims.readings -> annulus_measurement sink in this process"
    )
    ingest_sink_batch_size: int = Field(5000, ge=1, description="readings per sink transaction")
    ingest_sink_port: int = Field(8005, description="HTTP port of `wims serve ingest-sink`")

    # --- ingest: big and hostile requests (issue 17) ---
    ingest_slice_records: int = Field(
        250,
        ge=1,
        description="records parsed, validated or encoded between two turns of the event "
        "loop: a big request never holds up /healthz or small pushes for long",
    )
    ingest_csv_max_columns: int = Field(
        256, ge=8, description="most columns of a CSV header (400 above)"
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        # A forged token would let anyone edit well data: production must set its own secret.
        if (
            self.environment not in ("development", "test")
            and self.jwt_secret == DEFAULT_JWT_SECRET
        ):
            raise ValueError(
                "WIMS_JWT_SECRET is the development default; set a secret of your own "
                f"before running with WIMS_ENVIRONMENT={self.environment}"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # psycopg 3 is the only driver: accept the plain postgresql:// form too.
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            elif url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgres://")
            return url
        return f"postgresql+psycopg://wims@127.0.0.1:{self.pg_port}/wims"

    @property
    def libpq_url(self) -> str:
        """The same database as a plain libpq URL (for psycopg and psql)."""
        return self.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def port_of(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
