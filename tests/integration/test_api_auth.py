"""Login, tokens, inactive users and login throttling, against the real database."""

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlalchemy import Engine

from shared.contracts.enums import Role
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    PASSWORD,
    Api,
    Users,
    _run_app,
    make_user,
    users_fixture,
)
from tests.support.stack import Stack

V1 = "/api/v1"


@pytest_asyncio.fixture(name="api", scope="module", loop_scope="session")
async def throttled_api(stack: Stack) -> AsyncIterator[Api]:
    settings = stack.settings(login_max_failures_per_account=3, login_max_failures_per_address=6)
    async for a in _run_app(settings):
        yield a


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(f"{V1}/auth/token", data={"username": email, "password": password})


async def test_login_gives_a_bearer_token_for_me(api: Api, users: Users) -> None:
    r = await login(api.client, "Engineer@wims.test", PASSWORD)  # email is case-insensitive
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    me = await api.client.get(
        f"{V1}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == "engineer@wims.test" and me.json()["role"] == "engineer"
    assert "password_hash" not in me.json()


async def test_wrong_password_and_forged_token_are_401(api: Api, users: Users) -> None:
    r = await login(api.client, "viewer@wims.test", "not the password")
    assert r.status_code == 401
    r = await api.client.get(f"{V1}/auth/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


async def test_deactivated_user_cannot_log_in_and_their_token_stops_working(
    api: Api, users: Users
) -> None:
    token = (await login(api.client, "viewer@wims.test", PASSWORD)).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get(f"{V1}/wells", headers=mine)).status_code == 200
    r = await api.client.patch(
        f"{V1}/users/{users.ids['viewer']}",
        json={"is_active": False},
        headers=users.headers["admin"],
    )
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (await api.client.get(f"{V1}/wells", headers=mine)).status_code == 401
    assert (await login(api.client, "viewer@wims.test", PASSWORD)).status_code == 401


async def test_role_change_revokes_existing_tokens(api: Api, users: Users) -> None:
    token = (await login(api.client, "engineer@wims.test", PASSWORD)).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    body = {
        "name": "W-9",
        "field": "F",
        "type": "observation",
        "location": "onshore",
        "measured_depth": 100,
    }
    await api.client.patch(
        f"{V1}/users/{users.ids['engineer']}",
        json={"role": "viewer"},
        headers=users.headers["admin"],
    )
    # The token was issued to an engineer: it is revoked, not silently downgraded.
    assert (await api.client.post(f"{V1}/wells", json=body, headers=mine)).status_code == 401
    token = (await login(api.client, "engineer@wims.test", PASSWORD)).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    assert (await api.client.post(f"{V1}/wells", json=body, headers=mine)).status_code == 403


async def test_an_admin_cannot_lock_themselves_out(api: Api, users: Users) -> None:
    r = await api.client.patch(
        f"{V1}/users/{users.ids['admin']}",
        json={"is_active": False},
        headers=users.headers["admin"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "is_active"


async def test_failed_logins_are_throttled_per_account(
    api: Api, users: Users, db_engine: Engine
) -> None:
    for _ in range(3):
        assert (await login(api.client, "engineer@wims.test", "guess")).status_code == 401
    # The limit is reached: even the right password waits, and says how long.
    r = await login(api.client, "engineer@wims.test", PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # Another account from the same address is not locked by it.
    assert (await login(api.client, "viewer@wims.test", PASSWORD)).status_code == 200


async def test_failed_logins_are_throttled_per_address(
    api: Api, users: Users, db_engine: Engine
) -> None:
    # Spraying one guess over many accounts trips the per-address limit (6 here), whatever
    # the earlier tests of this module already spent of it.
    emails = [f"spray{i}@wims.test" for i in range(8)]
    for email in emails:
        make_user(db_engine, email, Role.viewer)
    codes = [(await login(api.client, email, "guess")).status_code for email in emails]
    assert codes.count(401) <= 6
    assert codes[-2:] == [429, 429]
