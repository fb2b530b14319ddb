"""Each of the five services runs as its own process, turns ready, and stops on SIGTERM."""

import signal

import httpx
import pytest

from tests.support.stack import Stack, start_service

SERVICES = ["api", "ingest", "maasp", "integrity", "tasks"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_ready_then_stops_on_sigterm_within_10s(stack: Stack, name: str) -> None:
    svc = start_service(stack, name)
    svc.wait_ready(timeout_s=90)
    body = httpx.get(f"{svc.base_url}/readyz", timeout=5).json()
    assert body["checks"] == {"kafka": True, "database": True}
    assert httpx.get(f"{svc.base_url}/healthz", timeout=5).status_code == 200
    metrics = httpx.get(f"{svc.base_url}/metrics", timeout=5)
    assert metrics.status_code == 200 and "process_cpu_seconds_total" in metrics.text

    took = svc.terminate(signal.SIGTERM, timeout_s=30)
    assert svc.proc.returncode is not None
    assert took < 10, f"{name} took {took:.1f} s to stop on SIGTERM"
