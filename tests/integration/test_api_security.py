"""Security of the API's authentication and HTTP surface, against the real database:
no published signing secret, token revocation, the body guard, a login throttle that
cannot lock an account's owner out, forwarded headers and the headers on every answer."""

import argparse
import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest_asyncio
from sqlalchemy import event

from services.api.deps import UserCache, user_from_token
from services.cli import cmd_create_admin
from shared.infrastructure.auth import create_access_token
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    PASSWORD,
    Api,
    Users,
    _run_app,
    make_user,
    users_fixture,
)
from tests.support.stack import Stack, start_service

V1 = "/api/v1"
LIMIT = 64 * 1024
# The development value shared/infrastructure/settings.py used to publish as the default signing secret.
PUBLISHED_SECRET = "development-only-secret-change-me"
WELL = {
    "name": "S-1",
    "field": "F",
    "type": "observation",
    "location": "onshore",
    "measured_depth": 100,
}


@pytest_asyncio.fixture(name="api", scope="module", loop_scope="session")
async def security_api(stack: Stack) -> AsyncIterator[Api]:
    # A long user cache: revocation in this process must not depend on the entry expiring.
    settings = stack.settings(
        api_max_body_bytes=LIMIT,
        api_user_cache_s=600,
        login_max_failures_per_account=3,
        login_max_failures_per_address=50,
    )
    async for a in _run_app(settings):
        yield a


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(f"{V1}/auth/token", data={"username": email, "password": password})


async def token_of(api: Api, email: str, password: str = PASSWORD) -> str:
    r = await login(api.client, email, password)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def client_from(api: Api, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


# --- the signing secret -----------------------------------------------------------------


async def test_a_token_signed_with_the_published_secret_is_refused(api: Api, users: Users) -> None:
    forged = create_access_token(users.ids["admin"], "admin", PUBLISHED_SECRET, timedelta(hours=1))
    r = await api.client.get(f"{V1}/auth/me", headers=bearer(forged))
    assert r.status_code == 401
    assert api.settings.jwt_secret != PUBLISHED_SECRET
    # The install's own secret (read from the run folder) does sign valid tokens.
    r = await api.client.get(f"{V1}/auth/me", headers=users.headers["admin"])
    assert r.status_code == 200 and r.json()["role"] == "admin"


# --- revocation ---------------------------------------------------------------------------


async def test_a_password_reset_revokes_the_tokens_issued_before(api: Api, users: Users) -> None:
    old = await token_of(api, "engineer@wims.test")
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(old))).status_code == 200
    r = await api.client.patch(
        f"{V1}/users/{users.ids['engineer']}",
        json={"password": "a brand new password"},
        headers=users.headers["admin"],
    )
    assert r.status_code == 200
    r = await api.client.get(f"{V1}/auth/me", headers=bearer(old))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    new = await token_of(api, "engineer@wims.test", "a brand new password")
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(new))).status_code == 200


async def test_reactivating_a_user_does_not_bring_their_old_tokens_back(
    api: Api, users: Users
) -> None:
    old = await token_of(api, "viewer@wims.test")
    path, admin = f"{V1}/users/{users.ids['viewer']}", users.headers["admin"]
    assert (await api.client.patch(path, json={"is_active": False}, headers=admin)).is_success
    assert (await api.client.patch(path, json={"is_active": True}, headers=admin)).is_success
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(old))).status_code == 401
    new = await token_of(api, "viewer@wims.test")
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(new))).status_code == 200


async def test_an_unrelated_change_keeps_the_users_tokens(api: Api, users: Users) -> None:
    token = await token_of(api, "viewer@wims.test")
    r = await api.client.patch(
        f"{V1}/users/{users.ids['viewer']}",
        json={"full_name": "Vera Viewer", "role": "viewer", "is_active": True},
        headers=users.headers["admin"],
    )
    assert r.status_code == 200
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(token))).status_code == 200


async def test_logout_revokes_every_token_of_the_user_and_only_theirs(
    api: Api, users: Users
) -> None:
    first = await token_of(api, "engineer@wims.test")
    r = await api.client.post(f"{V1}/auth/logout", headers=bearer(first))
    assert r.status_code == 204 and r.headers["cache-control"] == "no-store"
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(first))).status_code == 401
    # "Log out everywhere": the fixture's token for the same user, issued earlier, too.
    assert (
        await api.client.get(f"{V1}/wells", headers=users.headers["engineer"])
    ).status_code == 401
    assert (await api.client.get(f"{V1}/wells", headers=users.headers["viewer"])).status_code == 200
    again = await token_of(api, "engineer@wims.test")
    assert (await api.client.get(f"{V1}/auth/me", headers=bearer(again))).status_code == 200
    # Logging out twice with the revoked token is refused, not an error.
    r = await api.client.post(f"{V1}/auth/logout", headers=bearer(first))
    assert r.status_code == 401


async def test_another_process_refuses_a_revoked_token_once_its_cache_entry_is_gone(
    api: Api, users: Users
) -> None:
    """``user_from_token`` with a cache of its own stands for another API process (the SSE
    stream re-checks open streams the same way): with no cached entry it reads the user and
    sees the new version at once; a cached entry lasts at most WIMS_API_USER_CACHE_S."""
    token = await token_of(api, "admin@wims.test")
    other = UserCache(ttl_s=0)  # WIMS_API_USER_CACHE_S=0: read the user on every request
    async with api.app.state.sessionmaker() as session:
        user = await user_from_token(session, api.settings, token, other)
        assert user.email == "admin@wims.test"
    assert (await api.client.post(f"{V1}/auth/logout", headers=bearer(token))).status_code == 204
    async with api.app.state.sessionmaker() as session:
        try:
            await user_from_token(session, api.settings, token, other)
        except Exception as exc:  # HTTPException(401)
            assert getattr(exc, "status_code", None) == 401
        else:
            raise AssertionError("a revoked token was accepted by another process")


async def test_create_admin_resetting_a_password_revokes_the_admins_tokens(
    api: Api, users: Users
) -> None:
    token = await token_of(api, "admin@wims.test")
    args = argparse.Namespace(email="admin@wims.test", password="reset by the cli", name="")
    assert await asyncio.to_thread(cmd_create_admin, api.settings, args) == 0
    # Made outside the API: a process sees it once its cached entry is gone (here: none).
    async with api.app.state.sessionmaker() as session:
        try:
            await user_from_token(session, api.settings, token, UserCache(ttl_s=0))
        except Exception as exc:  # HTTPException(401)
            assert getattr(exc, "status_code", None) == 401
        else:
            raise AssertionError("the token survived a password reset by wims create-admin")
    assert (await login(api.client, "admin@wims.test", "reset by the cli")).status_code == 200


async def test_checking_the_token_version_costs_no_database_round_trip(
    api: Api, users: Users
) -> None:
    token = await token_of(api, "viewer@wims.test")
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    engines = [api.app.state.engine.sync_engine, api.app.state.read_engine.sync_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        assert (await api.client.get(f"{V1}/auth/me", headers=bearer(token))).status_code == 200
        statements.clear()  # the first request may load the user
        for _ in range(3):
            r = await api.client.get(f"{V1}/auth/me", headers=bearer(token))
            assert r.status_code == 200
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert [s for s in statements if "app_user" in s] == []


# --- the body guard -----------------------------------------------------------------------


class Body:
    """A streamed request body that records how much of it the server pulled."""

    def __init__(self, total: int, chunk: int = 8192) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b" " * self.chunk


async def test_a_body_without_a_token_is_refused_before_it_is_read(api: Api, users: Users) -> None:
    body = Body(32 * 1024)
    r = await api.client.post(
        f"{V1}/wells", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["errors"][0]["field"] == "Authorization"
    assert body.sent == 0, "the body was read before the token was checked"
    forged = create_access_token(users.ids["admin"], "admin", PUBLISHED_SECRET, timedelta(hours=1))
    body = Body(32 * 1024)
    r = await api.client.post(f"{V1}/wells", content=body, headers=bearer(forged))
    assert r.status_code == 401 and body.sent == 0


async def test_a_declared_length_above_the_limit_is_413_before_any_byte_is_read(
    api: Api, users: Users
) -> None:
    for headers in ({}, users.headers["admin"]):
        r = await api.client.post(
            f"{V1}/wells",
            content=b"x" * (LIMIT + 1),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        error = r.json()["errors"][0]
        assert error["field"] == "body" and str(LIMIT) in error["reason"]


async def test_a_chunked_body_is_cut_off_at_the_limit(api: Api, users: Users) -> None:
    body = Body(10 * LIMIT)
    r = await api.client.post(
        f"{V1}/wells",
        content=body,
        headers={**users.headers["admin"], "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "body"
    assert body.sent <= LIMIT + body.chunk, f"read {body.sent} bytes of an over-limit body"


async def test_the_token_endpoint_stays_public_and_bodies_within_the_limit_pass(
    api: Api, users: Users
) -> None:
    assert (await login(api.client, "admin@wims.test")).status_code == 200
    r = await api.client.post(f"{V1}/wells", json=WELL, headers=users.headers["engineer"])
    assert r.status_code == 201, r.text


# --- login throttling ---------------------------------------------------------------------


async def test_guessing_at_the_admin_does_not_lock_the_admin_out(api: Api, users: Users) -> None:
    async with (
        client_from(api, "198.51.100.7") as attacker,
        client_from(api, "203.0.113.20") as owner,
    ):
        for _ in range(3):
            assert (await login(attacker, "admin@wims.test", "guess")).status_code == 401
        r = await login(attacker, "admin@wims.test")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        # The admin, from their own address, still gets in with the right password.
        assert (await login(owner, "admin@wims.test")).status_code == 200
        # ... while the attacker's further guesses from elsewhere are still limited.
        async with client_from(api, "198.51.100.8") as second:
            assert (await login(second, "admin@wims.test", "guess")).status_code == 401
            assert (await login(second, "admin@wims.test", "guess")).status_code == 429


# --- headers and redirects ----------------------------------------------------------------


async def test_token_and_me_answers_are_not_cached_and_all_carry_security_headers(
    api: Api, users: Users
) -> None:
    r = await login(api.client, "viewer@wims.test")
    assert r.headers["cache-control"] == "no-store"
    me = await api.client.get(f"{V1}/auth/me", headers=bearer(r.json()["access_token"]))
    assert me.headers["cache-control"] == "no-store"
    refused = await api.client.post(f"{V1}/wells", json=WELL)
    for answer in (
        r,
        me,
        refused,
        await api.client.get(f"{V1}/wells", headers=users.headers["viewer"]),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


async def test_the_trailing_slash_redirect_does_not_repeat_the_host_header(
    api: Api, users: Users
) -> None:
    r = await api.client.get(
        f"{V1}/wells/?limit=1", headers={**users.headers["viewer"], "Host": "evil.example"}
    )
    assert r.is_redirect
    assert "evil.example" not in r.headers["location"]
    assert r.headers["location"] == f"{V1}/wells?limit=1"


# --- the real process ---------------------------------------------------------------------


def test_the_api_process_reads_the_run_folder_secret_and_ignores_forwarded_headers(
    stack: Stack, users: Users
) -> None:
    svc = start_service(
        stack,
        "api",
        {"WIMS_LOGIN_MAX_FAILURES_PER_ADDRESS": "2", "WIMS_LOGIN_MAX_FAILURES_PER_ACCOUNT": "50"},
    )
    try:
        svc.wait_ready(timeout_s=90)
        with httpx.Client(base_url=svc.base_url, timeout=10) as client:
            codes = [
                client.post(
                    f"{V1}/auth/token",
                    data={"username": f"nobody{i}@wims.test", "password": "guess"},
                    headers={"X-Forwarded-For": f"192.0.2.{i}"},
                ).status_code
                for i in range(3)
            ]
            # Every attempt counted against the real peer address, whatever the header says.
            assert codes == [401, 401, 429]
            # A token signed in this test process with the run folder's secret is valid there.
            me = client.get(f"{V1}/auth/me", headers=users.headers["admin"])
            assert me.status_code == 200
            assert "server" not in me.headers
    finally:
        svc.terminate()


def test_a_trusted_proxy_names_the_client(stack: Stack, users: Users) -> None:
    svc = start_service(
        stack,
        "api",
        {
            "WIMS_LOGIN_MAX_FAILURES_PER_ADDRESS": "2",
            "WIMS_LOGIN_MAX_FAILURES_PER_ACCOUNT": "50",
            "WIMS_TRUSTED_PROXIES": "127.0.0.0/8",
        },
    )
    try:
        svc.wait_ready(timeout_s=90)
        with httpx.Client(base_url=svc.base_url, timeout=10) as client:
            codes = [
                client.post(
                    f"{V1}/auth/token",
                    data={"username": f"nobody{i}@wims.test", "password": "guess"},
                    headers={"X-Forwarded-For": f"192.0.2.{i}"},
                ).status_code
                for i in range(3)
            ]
        assert codes == [401, 401, 401]
    finally:
        svc.terminate()
