"""The API's and the ingest service's OpenAPI tell the truth: schemathesis (``--checks all``)
against each running process's own /openapi.json, authenticated as an admin.

Both services run as processes (tests/support/stack.py) on the session's real Kafka and
PostgreSQL. Bounded and reproducible: at most ``MAX_EXAMPLES`` cases per operation and a
fixed seed, so a failure seen in CI is the same failure on a developer's machine (the
command is printed with the findings).

A finding accepted by design is named in a schemathesis baseline file next to this module
(``API_BASELINE``; ``INGEST_BASELINE`` has none and does not exist). Delete a file and that
run is strict. To record a new one: delete it and run this module
with WIMS_TEST_SCHEMATHESIS_RECORD=1 (schemathesis writes the file from the run's findings),
then read it: every entry is a finding accepted on purpose.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.contracts.enums import Role
from shared.infrastructure.settings import PROJECT_ROOT
from tests.integration.test_api_fixtures import make_user, token_for
from tests.support.stack import Stack, start_service

SEED = 20261202
MAX_EXAMPLES = 25
# Findings accepted by design (schemathesis --baseline); no file: a strict run.
INGEST_BASELINE = Path(__file__).with_name("schemathesis_ingest_baseline.json")
API_BASELINE = Path(__file__).with_name("schemathesis_api_baseline.json")
RECORD = os.environ.get("WIMS_TEST_SCHEMATHESIS_RECORD") == "1"
RUN_TIMEOUT_S = 600
FUZZ_ADMIN_ID = 1_987_654_321


@dataclass
class Services:
    api: str
    ingest: str
    admin_headers: dict[str, str]
    report_dir: Path

    def new_api_key(self) -> str:
        # Made when needed: fuzzing the API as an admin revokes API keys (DELETE /api-keys/1).
        r = httpx.post(
            f"{self.api}/api/v1/api-keys",
            json={"name": "schemathesis", "source": "fuzz"},
            headers=self.admin_headers,
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return r.json()["secret"]


@pytest.fixture(scope="module")
def services(stack: Stack, db_engine: Engine) -> Iterator[Services]:
    settings = stack.settings()
    admin_id = make_user(db_engine, "fuzz-admin@wims.test", Role.admin)
    # Far from the ids the fuzzer tries: PATCH /users/{id} on itself (a new password, role or
    # is_active) revokes its own token, and every later case would be a 401.
    with db_engine.begin() as conn:
        conn.execute(
            text("UPDATE app_user SET id = :far WHERE id = :id"),
            {"far": FUZZ_ADMIN_ID, "id": admin_id},
        )
    admin_id = FUZZ_ADMIN_ID
    headers = {"Authorization": f"Bearer {token_for(settings, admin_id, Role.admin)}"}
    api = start_service(stack, "api")
    ingest = start_service(stack, "ingest")
    api.wait_ready()
    ingest.wait_ready()
    # Under logs/: WIMS_TEST_KEEP_LOGS keeps the reports and the whole output with the logs.
    report_dir = stack.run_dir / "logs" / "schemathesis"
    report_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield Services(api.base_url, ingest.base_url, headers, report_dir)
    finally:
        api.terminate()
        ingest.terminate()


def schemathesis(
    base_url: str, header: str, report: Path, *extra: str
) -> subprocess.CompletedProcess:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    cmd = [
        st,
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        # Replaced by schemathesis_hooks.py's check, which tells a domain rule's 422 from a
        # promise the schema breaks.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # one worker: a fixed seed then gives a fixed order of stateful cases
        "--header",
        header,
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--output-sanitize",
        "true",
        "--generation-database",
        "none",
        *extra,
    ]
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": str(PROJECT_ROOT),
        "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
    }
    run = subprocess.run(
        cmd,
        cwd=report.parent,  # schemathesis keeps a folder of its own in its working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    report.with_suffix(".txt").write_text(run.stdout + run.stderr)
    return run


def _baseline(path: Path) -> tuple[str, ...]:
    # A baseline file that does not exist is created by schemathesis from the run: only
    # when asked to record, so a deleted file means a strict run.
    return ("--baseline", str(path)) if path.exists() or RECORD else ()


def _findings(run: subprocess.CompletedProcess) -> str:
    # The command (credential left out), then the summary and the reproducing curl commands,
    # which are at the end of schemathesis' output.
    cmd = [
        a if not a.startswith(("Authorization:", "X-API-Key:")) else "<credential>"
        for a in run.args
    ]
    output = "\n".join(run.stdout.splitlines()[-400:])
    return f"{' '.join(cmd)}\n{output}\n{run.stderr[-4000:]}"


def test_api_openapi_has_no_server_error_and_no_schema_mismatch(services: Services) -> None:
    run = schemathesis(
        services.api,
        f"Authorization:{services.admin_headers['Authorization']}",
        services.report_dir / "api.xml",
        # An endless Server-Sent Events stream answers no request-response check (each
        # case would wait for the request timeout); tests/integration/test_api_sse.py.
        "--exclude-path",
        "/api/v1/alerts/stream",
        # Logging out revokes the fuzzer's own token ("log out everywhere"): every case
        # after it would be a 401. tests/integration/test_api_security.py covers it.
        "--exclude-path",
        "/api/v1/auth/logout",
        *_baseline(API_BASELINE),
    )
    assert run.returncode == 0, _findings(run)


def test_ingest_openapi_has_no_findings_beyond_the_accepted_ones(services: Services) -> None:
    run = schemathesis(
        services.ingest,
        f"X-API-Key:{services.new_api_key()}",
        services.report_dir / "ingest.xml",
        *_baseline(INGEST_BASELINE),
    )
    assert run.returncode == 0, _findings(run)
