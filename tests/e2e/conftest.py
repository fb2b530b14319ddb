"""The whole stack as separate processes, started the way the README does (`wims up`), on
the test session's Kafka and PostgreSQL. Tests talk to it only through HTTP and Kafka."""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from services.cli import SERVICES
from shared.settings import PROJECT_ROOT, Settings
from tests.support.stack import Stack

LOG_TAIL_LINES = 60


@dataclass
class RunningStack:
    stack: Stack
    settings: Settings

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}/api/v1"

    @property
    def ingest(self) -> str:
        return f"http://127.0.0.1:{self.settings.ingest_port}/ingest/v1"

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.settings.port_of(service)}"

    def wims(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the `wims` command against this stack, as a user would."""
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env=self.stack.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def login(self, email: str, password: str) -> dict[str, str]:
        r = httpx.post(f"{self.api}/auth/token", data={"username": email, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def running_stack(stack: Stack) -> Iterator[RunningStack]:
    # Module-scoped: the services leave when the module is done, so no other test meets them
    # on its ports or in its consumer groups.
    rs = RunningStack(stack, stack.settings())
    up = rs.wims("up", "--timeout", "240")
    assert up.returncode == 0, f"wims up failed:\n{up.stdout}\n{up.stderr}"
    try:
        yield rs
    finally:
        rs.wims("down", "--services-only")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    # A failure here is a timing across five processes: the report carries each service's
    # last log lines, so a failure seen once in CI can be understood from its output alone.
    report = yield
    rs = getattr(item, "funcargs", {}).get("running_stack")
    if report.when == "call" and report.failed and isinstance(rs, RunningStack):
        for service in SERVICES:
            path = rs.settings.run_dir / "logs" / f"{service}.log"
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                report.sections.append((f"{service} log (last lines)", "\n".join(lines)))
    return report
