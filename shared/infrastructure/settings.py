"""One source of truth for configuration: environment variables prefixed ``WIMS_``."""

import contextlib
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# HS256 keys shorter than the hash output (32 bytes) weaken the signature (RFC 7518 3.2).
MIN_JWT_SECRET_BYTES = 32
JWT_SECRET_FILE = "jwt-secret"


def load_or_create_jwt_secret(run_dir: Path) -> str:
    """The install's own signing secret, ``<run_dir>/jwt-secret``, made on first use.

    Created atomically: the random secret is written to a private temporary file, then
    hard-linked to its final name, which fails if the name exists. So two processes starting
    at once (``wims up`` starts five) both end up reading the one file that won, and no
    process ever reads a half-written secret."""
    path = run_dir / JWT_SECRET_FILE
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = _private_tempfile(run_dir)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")  # 48 random bytes
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    secret = path.read_text().strip()
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ValueError(
            f"{path} holds a JWT secret shorter than {MIN_JWT_SECRET_BYTES} bytes; "
            "delete it to have a new one made, or set WIMS_JWT_SECRET"
        )
    return secret


def _private_tempfile(folder: Path) -> tuple[int, str]:
    name = str(folder / f".{JWT_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name


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
    consumer_lag_interval_s: float = Field(
        15.0, gt=0, description="how often a stream worker exports its groups' consumer lag"
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
    # Alarm hygiene (docs/domain.md "Alarm hygiene"): when a colour change becomes an alert.
    colour_persist_s: float = Field(
        120.0,
        ge=0,
        description="a well colour other than red must hold this long before it is alerted "
        "(a change that reverts sooner raises nothing); red alerts at once; 0: no delay",
    )
    config_settling_s: float = Field(
        300.0,
        ge=0,
        description="a well whose annuli, critical points or barrier elements changed within "
        "this time raises no colour alerts (its snapshots still record the colour)",
    )
    integrity_alarm_sweep_s: float = Field(
        2.0,
        gt=0,
        description="how often the integrity worker looks for colour alerts whose persistence "
        "or settling time ran out with no new event for the well",
    )
    integrity_risk_matrix_refresh_seconds: float = Field(
        60.0, gt=0, description="how long the integrity worker caches the risk matrix"
    )

    run_dir: Path = PROJECT_ROOT / ".run"

    jwt_ttl_minutes: int = 60

    # Tasks service (WIMS defaults; docs/domain.md "Task rules").
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

    # Daily findings (services/tasks/findings.py, run by the tasks service; docs/domain.md).
    findings_sweep_seconds: float = Field(
        60.0, gt=0, description="how often missing data, re-tests and communication are checked"
    )
    data_stale_after_s: float = Field(
        86400.0,
        gt=0,
        description="no good reading for this long raises data_stale (a well's own "
        "data_stale_after_s overrides it)",
    )
    maasp_missing_grace_s: float = Field(
        3600.0, ge=0, description="an annulus may have no MAASP this long before maasp_missing"
    )
    retest_rise_bar: float = Field(
        13.8, gt=0, description="rise above the last diagnostic test that makes a re-test due"
    )
    retest_sustain_s: float = Field(
        1800.0, ge=0, description="event-time seconds the rise must last"
    )
    # Derived critical points (services/api/processing/derived.py; docs/domain.md).
    auto_accept_derived_points: bool = Field(
        False,
        description="accept the critical points derived from a well's architecture on every "
        "architecture change; false: they are proposals until an engineer accepts them",
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
    api_fleet_rows_max_age_s: float = Field(
        30.0,
        ge=0,
        description="longest an API process reuses GET /fleet's well-level rows (re-read "
        "at once when PostgreSQL notifies a change or a task falls due); 0: read on every "
        "request",
    )
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

    # auth and HTTP surface (api, ingest): signing secrets, proxies, body limit, exposure
    jwt_secret: str = Field(
        "",
        description="signs API tokens; unset: <run_dir>/jwt-secret, made on first use "
        "(refused in production: set it)",
    )
    jwt_previous_secrets: str = Field(
        "",
        description="comma-separated secrets still accepted for verifying tokens during a "
        "key rotation; new tokens are signed with jwt_secret only",
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses/CIDRs whose X-Forwarded-For/-Proto are "
        "believed; empty: trust none",
    )
    api_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="largest request body of the api service; more: 413"
    )
    api_docs_enabled: bool | None = Field(
        None,
        description="serve /docs, /redoc and /openapi.json; unset: on in development and "
        "test, off in production",
    )
    metrics_enabled: bool = Field(True, description="serve /metrics on the HTTP services")

    # api service: the live alert stream (SSE) at scale, services/api/alert_feed.py and pump.py
    sse_max_streams_per_user: int = Field(
        10, ge=1, description="open live alert streams one user may hold; more: 429"
    )
    sse_max_streams: int = Field(
        1000, ge=1, description="open live alert streams one API process serves; more: 429"
    )
    sse_auth_recheck_s: float = Field(
        5.0,
        gt=0,
        description="how often an open stream re-checks its token and user; a stream whose "
        "user was deactivated, whose role may not stream or whose token expired is closed",
    )
    sse_client_queue: int = Field(
        1000, ge=1, description="alerts waiting for one slow client before it is disconnected"
    )
    sse_replay_buffer: int = Field(
        10_000,
        ge=0,
        description="newest alerts kept per API process to serve a resume (Last-Event-ID) "
        "from memory; an older position is caught up with a reader of its own",
    )

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

    # --- measurement storage (issue 20): partitions, retention, roll-ups ---
    measurement_retention_days: int = Field(
        90,
        ge=0,
        description="raw readings older than this are dropped, a whole week's partition at a "
        "time (0: kept forever); hourly and daily roll-ups stay",
    )
    measurement_hourly_retention_days: int = Field(
        1825,
        ge=0,
        description="hourly roll-ups older than this are deleted (0: kept forever; daily "
        "roll-ups are always kept); at least measurement_retention_days",
    )
    measurement_partitions_ahead_weeks: int = Field(
        4, ge=1, le=52, description="weekly partitions made ahead of the current week"
    )
    measurement_maintenance_interval_s: float = Field(
        3600.0,
        gt=0,
        description="how often the ingest service makes partitions and applies retention",
    )

    @model_validator(mode="after")
    def _hourly_outlives_raw(self) -> "Settings":
        # Long ranges are answered from the hourly roll-ups: deleting them before the raw
        # readings would leave ranges that neither answers.
        raw, hourly = self.measurement_retention_days, self.measurement_hourly_retention_days
        if hourly and (raw == 0 or hourly < raw):
            raise ValueError(
                "WIMS_MEASUREMENT_HOURLY_RETENTION_DAYS must be 0 (forever) or at least "
                "WIMS_MEASUREMENT_RETENTION_DAYS (with raw readings kept forever, 0)"
            )
        return self

    @model_validator(mode="after")
    def _resolve_jwt_secret(self) -> "Settings":
        # A forged token would let anyone edit well data, so no secret is ever shared between
        # installs: production must bring its own, long enough for HS256; elsewhere each run
        # folder gets a random one that every process started on it reads.
        production = self.environment not in ("development", "test")
        if not self.jwt_secret:
            if production:
                raise ValueError(
                    "WIMS_JWT_SECRET is not set; set a random secret of at least "
                    f"{MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`) before "
                    f"running with WIMS_ENVIRONMENT={self.environment}"
                )
            self.jwt_secret = load_or_create_jwt_secret(Path(self.run_dir))
        if production:
            for name, value in [("WIMS_JWT_SECRET", self.jwt_secret)] + [
                ("WIMS_JWT_PREVIOUS_SECRETS", p) for p in self.jwt_verification_secrets[1:]
            ]:
                if len(value.encode()) < MIN_JWT_SECRET_BYTES:
                    raise ValueError(
                        f"{name}: a secret is shorter than {MIN_JWT_SECRET_BYTES} bytes; "
                        "use e.g. `openssl rand -hex 32`"
                    )
        return self

    @property
    def jwt_verification_secrets(self) -> list[str]:
        """The current secret first, then the previous ones still accepted."""
        previous = [p.strip() for p in self.jwt_previous_secrets.split(",") if p.strip()]
        return [self.jwt_secret, *previous]

    @property
    def docs_enabled(self) -> bool:
        if self.api_docs_enabled is not None:
            return self.api_docs_enabled
        return self.environment in ("development", "test")

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
