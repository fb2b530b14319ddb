"""The HTTP surface every WIMS service shares (shared/infrastructure/http_app.py) and the login throttle
(services/api/ratelimit.py), without Kafka or a database: these routes need neither."""

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.api.ratelimit import LoginThrottle
from shared.infrastructure.http_app import STRICT_CSP, _relative, make_http_app
from shared.infrastructure.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(run_dir=tmp_path, **kw)  # type: ignore[arg-type]


async def get(app: FastAPI, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wims.local"
    ) as client:
        return await client.get(path, **kw)  # type: ignore[arg-type]


def ingest_app(s: Settings) -> FastAPI:
    from services.ingest.app import create_app

    return create_app(s)


def api_app(s: Settings) -> FastAPI:
    from services.api.app import create_app

    return create_app(s)


@pytest.mark.parametrize("factory", [api_app, ingest_app], ids=["api", "ingest"])
async def test_every_answer_carries_the_security_headers(factory, tmp_path: Path) -> None:
    app = factory(settings(tmp_path))
    for path, status in [("/healthz", 200), ("/no-such-page", 404)]:
        r = await get(app, path)
        assert r.status_code == status
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["content-security-policy"] == STRICT_CSP
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "server" not in r.headers


async def test_docs_page_runs_its_inline_script_by_hash_only(tmp_path: Path) -> None:
    app = api_app(settings(tmp_path))
    r = await get(app, "/docs")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text
    csp = r.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp
    assert (await get(app, "/openapi.json")).json()["info"]["title"] == "WIMS api"
    redirect = await get(app, "/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "sha256-" in redirect.headers["content-security-policy"]
    redoc = await get(app, "/redoc")
    assert redoc.status_code == 200 and "redoc" in redoc.headers["content-security-policy"]


@pytest.mark.parametrize("factory", [api_app, ingest_app], ids=["api", "ingest"])
async def test_docs_and_metrics_can_be_turned_off(factory, tmp_path: Path) -> None:
    app = factory(settings(tmp_path, api_docs_enabled=False, metrics_enabled=False))
    for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
        assert (await get(app, path)).status_code == 404, path
    assert (await get(app, "/healthz")).status_code == 200
    on = factory(settings(tmp_path))
    assert (await get(on, "/metrics")).status_code == 200


async def test_docs_are_off_by_default_in_production(tmp_path: Path) -> None:
    app = api_app(settings(tmp_path, environment="production", jwt_secret="p" * 32))
    assert (await get(app, "/docs")).status_code == 404
    assert (await get(app, "/openapi.json")).status_code == 404


async def test_redirects_never_repeat_the_host_header(tmp_path: Path) -> None:
    app = make_http_app("t", settings(tmp_path))

    @app.get("/things")
    async def things() -> list[int]:
        return []

    r = await get(app, "/things/?a=1", headers={"Host": "evil.example"})
    assert r.status_code == 307
    assert r.headers["location"] == "/things?a=1"
    # Never a scheme-relative "//host/..." either, which a browser reads as another site.
    assert _relative(b"http://wims.local//evil.example/x") == b"/evil.example/x"
    assert _relative(b"/already/relative") == b"/already/relative"


def test_a_locked_account_still_takes_its_password_from_a_clean_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_account=3, per_address=20, window_s=300, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("admin", "attacker") == 0
        throttle.failed("admin", "attacker")
    assert throttle.retry_after("admin", "attacker") > 0
    # The owner, elsewhere, is not locked out by the attacker's guesses.
    assert throttle.retry_after("admin", "owner") == 0
    # Other accounts from the attacker's address are not locked either (per-address limit).
    assert throttle.retry_after("viewer", "attacker") == 0


def test_a_distributed_attack_gets_one_guess_per_address_once_the_account_is_hot() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_account=3, per_address=20, window_s=300, clock=clock)
    for i in range(3):
        throttle.failed("admin", f"bot{i}")
    throttle.failed("admin", "bot9")  # a first failure from a new address is counted ...
    assert throttle.retry_after("admin", "bot9") == pytest.approx(300)  # ... and then waits
    assert throttle.retry_after("admin", "owner") == 0
    clock.now += 301
    assert throttle.retry_after("admin", "bot9") == 0


def test_spraying_many_accounts_from_one_address_is_throttled() -> None:
    throttle = LoginThrottle(per_account=5, per_address=4, window_s=300, clock=Clock())
    for i in range(4):
        throttle.failed(f"user{i}", "sprayer")
    assert throttle.retry_after("user9", "sprayer") > 0
    assert throttle.retry_after("user9", "elsewhere") == 0


def test_success_clears_the_pair_but_not_the_account_count() -> None:
    throttle = LoginThrottle(per_account=2, per_address=20, window_s=300, clock=Clock())
    throttle.failed("admin", "a")
    throttle.failed("admin", "b")
    throttle.succeeded("admin", "a")
    assert throttle.retry_after("admin", "a") == 0
    assert throttle.retry_after("admin", "b") > 0
