"""The whole stack as separate processes, started the way the README does (`wims up`), on
the test session's Kafka and PostgreSQL. Tests talk to it only through HTTP and Kafka.

A module whose workers dead-letter a valid message fails: every valid message must be
processed (a transient failure retried, never skipped), so at the end of each module the
dead letters written while it ran are read back and listed in the failure. A test that
publishes garbage on purpose names what it provoked in ``RunningStack.allowed_dead_letters``.
"""

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from services import processes
from services.cli import SERVICES
from services.deadletters import Letter, read_dead_letters
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.stack import Stack

LOG_TAIL_LINES = 60


@dataclass
class RunningStack:
    stack: Stack
    settings: Settings
    #: dead letters a test provoked on purpose (garbage it published): not a failure
    allowed_dead_letters: list[Callable[[Letter], bool]] = field(default_factory=list)

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
    with services_up(stack) as rs:
        yield rs


@contextmanager
def services_up(stack: Stack, *up_args: str, **env: str) -> Iterator[RunningStack]:
    """`wims up *up_args` on the session's stack, with ``env`` added to the services'
    settings (a module that needs, e.g., a faster sweep overrides ``running_stack`` with
    it); afterwards fails when a valid message was dead-lettered meanwhile, and `wims down
    --services-only`."""
    if env:
        stack = Stack({**stack.env, **env}, stack.run_dir)
    rs = RunningStack(stack, stack.settings())
    # The broker outlives the module (one per session): letters of earlier modules are theirs.
    before = {x.id for x in dead_letters(rs.settings)}
    up = rs.wims("up", "--timeout", "240", *up_args)
    assert up.returncode == 0, f"wims up failed:\n{up.stdout}\n{up.stderr}"
    try:
        yield rs
        unexpected = [
            x
            for x in dead_letters(rs.settings)
            if x.id not in before and not any(allow(x) for allow in rs.allowed_dead_letters)
        ]
        if unexpected:
            pytest.fail(describe_dead_letters(unexpected), pytrace=False)
    finally:
        rs.wims("down", "--services-only")


def dead_letters(settings: Settings) -> list[Letter]:
    """Every dead letter on the test broker now (services/deadletters.py reads to the end
    offsets and stops)."""
    return asyncio.run(read_dead_letters(settings, timeout_s=60)).letters


def describe_dead_letters(letters: list[Letter]) -> str:
    lines = [f"{len(letters)} valid message(s) dead-lettered (each must be processed):"]
    for x in letters:
        dl = x.letter
        value = (dl.value or b"")[:300].decode("utf-8", "backslashreplace")
        lines.append(f"  {dl.id} by {dl.service} ({dl.reason}): {dl.error}\n      value: {value}")
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    # A failure here is a timing across five processes: the report carries each service's
    # last log lines, so a failure seen once in CI can be understood from its output alone.
    report = yield
    rs = getattr(item, "funcargs", {}).get("running_stack")
    if report.when == "call" and report.failed and isinstance(rs, RunningStack):
        for service in SERVICES:
            for inst in processes.known(rs.settings, service):
                path = processes.logfile(rs.settings, inst)
                if path.exists():
                    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                    report.sections.append((f"{inst.name} log (last lines)", "\n".join(lines)))
    return report
