"""Real Kafka and PostgreSQL for the test suite, and service processes on test ports.

Testcontainers when a Docker engine answers; otherwise the project's own deploy scripts
(the same ones `wims up` uses) on ports apart from a developer's running stack.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.infrastructure.settings import PROJECT_ROOT, Settings

# Apart from a developer's stack on the default ports. WIMS_TEST_PORT_OFFSET (a multiple of
# 10) lets two test runs share a machine.
_OFFSET = int(os.environ.get("WIMS_TEST_PORT_OFFSET", "0"))
TEST_PORTS = {
    "WIMS_KAFKA_PORT": str(19092 + _OFFSET),
    "WIMS_PG_PORT": str(15433 + _OFFSET),
    "WIMS_API_PORT": str(18000 + _OFFSET),
    "WIMS_INGEST_PORT": str(18001 + _OFFSET),
    "WIMS_MAASP_PORT": str(18002 + _OFFSET),
    "WIMS_INTEGRITY_PORT": str(18003 + _OFFSET),
    "WIMS_TASKS_PORT": str(18004 + _OFFSET),
}


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Stack:
    env: dict[str, str]
    run_dir: Path
    _cleanup: list = field(default_factory=list)

    def settings(self, **overrides: object) -> Settings:
        fields = {
            k.removeprefix("WIMS_").lower(): v for k, v in self.env.items() if k.startswith("WIMS_")
        }
        fields.update(overrides)
        return Settings(**fields)  # type: ignore[arg-type]

    def script(self, name: str, verb: str) -> None:
        subprocess.run(
            ["bash", str(PROJECT_ROOT / "deploy" / name), verb], env=self.env, check=True
        )

    def stop_kafka(self) -> None:
        self.script("kafka.sh", "stop")

    def start_kafka(self) -> None:
        self.script("kafka.sh", "start")

    def stop_postgres(self) -> None:
        self.script("postgres.sh", "stop")

    def start_postgres(self) -> None:
        self.script("postgres.sh", "start")


def keep_logs(run_dir: Path) -> None:
    """With WIMS_TEST_KEEP_LOGS=<folder>, the services' and the broker's logs of this
    session are copied there before the run folder goes: a rare failure can then be read
    after the fact, not only its last lines in the test report."""
    target = os.environ.get("WIMS_TEST_KEEP_LOGS")
    if not target:
        return
    if (run_dir / "logs").is_dir():
        shutil.copytree(run_dir / "logs", Path(target) / run_dir.name, dirs_exist_ok=True)


def discard(run_dir: Path, env: dict[str, str]) -> None:
    """Stop a test stack whose data is deleted next: the broker is killed outright (a
    controlled shutdown only tidies logs nobody reads again) and PostgreSQL stops without
    a checkpoint. Seconds per stack, over two dozen stacks per CI run."""
    pidfile = run_dir / "pids" / "kafka.pid"
    try:
        os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass
    subprocess.run(["bash", str(PROJECT_ROOT / "deploy/kafka.sh"), "stop"], env=env, check=False)
    subprocess.run(
        ["bash", str(PROJECT_ROOT / "deploy/postgres.sh"), "stop"],
        env={**env, "WIMS_PG_STOP_MODE": "immediate"},
        check=False,
    )


@contextmanager
def local_stack() -> Iterator[Stack]:
    run_dir = Path(tempfile.mkdtemp(prefix="wims-test-"))
    os.chmod(run_dir, 0o755)  # the postgres user must reach its data folder inside
    env = {
        **os.environ,
        **TEST_PORTS,
        "WIMS_RUN_DIR": str(run_dir),
        "WIMS_ENVIRONMENT": "test",
        "WIMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{TEST_PORTS['WIMS_KAFKA_PORT']}",
        "WIMS_PG_FAST": "1",
        "WIMS_KAFKA_HEAP": "768m",
    }
    env.pop("WIMS_DATABASE_URL", None)
    stack = Stack(env=env, run_dir=run_dir)
    try:
        stack.start_kafka()
        stack.start_postgres()
        yield stack
    finally:
        for fn in reversed(stack._cleanup):
            fn()
        discard(run_dir, env)
        keep_logs(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


@contextmanager
def container_stack() -> Iterator[Stack]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    run_dir = Path(tempfile.mkdtemp(prefix="wims-test-"))
    with (
        KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka,
        PostgresContainer(
            "postgres:15", username="wims", password="wims", dbname="wims", driver="psycopg"
        ) as pg,
    ):
        env = {
            **os.environ,
            **TEST_PORTS,
            "WIMS_RUN_DIR": str(run_dir),
            "WIMS_ENVIRONMENT": "test",
            "WIMS_KAFKA_BOOTSTRAP": kafka.get_bootstrap_server(),
            "WIMS_DATABASE_URL": pg.get_connection_url(),
        }
        stack = Stack(env=env, run_dir=run_dir)
        try:
            yield stack
        finally:
            for fn in reversed(stack._cleanup):
                fn()
            keep_logs(run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen
    base_url: str
    log_path: Path

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {timeout_s} s:\n{self.log_tail()}")

    def terminate(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> float:
        """Send ``sig``; returns the seconds the process took to exit."""
        if self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - t0

    def kill(self) -> None:
        self.terminate(signal.SIGKILL)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


def start_service(
    stack: Stack, name: str, extra_env: dict[str, str] | None = None
) -> ServiceProcess:
    env = {**stack.env, **(extra_env or {})}
    port = env[f"WIMS_{name.upper()}_PORT"]
    log_path = stack.run_dir / "logs" / f"{name}-{time.monotonic_ns()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", name],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    svc = ServiceProcess(name, proc, f"http://127.0.0.1:{port}", log_path)
    stack._cleanup.append(svc.kill)
    return svc
