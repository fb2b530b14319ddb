"""Input the database cannot hold is a 422 naming the field, never a 503 or a 500, and
nothing a client sent reaches the API's log: through the real API on the real database.

Each case here was a finding (issue 17): a NUL character anywhere answered 503 "database
unavailable" and logged the statement's parameters (a login's held a password hash);
absurd measurement ranges answered 500; integers beyond the columns' range, lax coercions
and a wrong ``Allow`` on 405 made the OpenAPI untrue.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    Users,
    api_fixture,
    build_well,
    make_user,
    token_for,
    users_fixture,
)
from tests.support.stack import Stack, start_service

V1 = "/api/v1"
NUL = "\x00"


def assert_422_naming(r: httpx.Response, field: str, reason_part: str = "") -> None:
    assert r.status_code == 422, (r.status_code, r.text)
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == [field], r.text
    assert reason_part in errors[0]["reason"], r.text


WELL = {
    "name": "NUL-test",
    "field": "North",
    "type": "oil_producer",
    "location": "platform",
    "measured_depth": 3000.0,
}


# --- NUL characters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("name", {**WELL, "name": f"W{NUL}1"}),
        ("field", {**WELL, "field": f"North{NUL}"}),
    ],
)
async def test_a_nul_in_a_body_text_is_a_422_naming_the_field(
    api: Api, users: Users, field: str, body: dict[str, Any]
) -> None:
    r = await api.client.post(f"{V1}/wells", json=body, headers=users.headers["engineer"])
    assert_422_naming(r, field, "NUL")
    assert (await api.client.get(f"{V1}/wells", headers=users.headers["viewer"])).json() == []


async def test_a_nul_in_a_query_filter_is_a_422_naming_it(api: Api, users: Users) -> None:
    for path, name in (("/wells", "field"), ("/scada-tags", "tag"), ("/fleet", "field")):
        r = await api.client.get(
            f"{V1}{path}", params={name: f"x{NUL}y"}, headers=users.headers["admin"]
        )
        assert_422_naming(r, name, "NUL")
    r = await api.client.get(
        f"{V1}/api-keys", params={"source": NUL}, headers=users.headers["admin"]
    )
    assert_422_naming(r, "source", "NUL")


async def test_a_nul_in_the_login_username_is_a_422_naming_it_not_a_503(
    api: Api, users: Users
) -> None:
    r = await api.client.post(
        f"{V1}/auth/token", data={"username": f"admin@wims.test{NUL}", "password": "x"}
    )
    assert_422_naming(r, "username", "NUL")


async def test_a_nul_in_a_user_password_is_a_422_naming_it(api: Api, users: Users) -> None:
    body = {"email": "new@wims.test", "password": f"long enough{NUL}", "role": "viewer"}
    r = await api.client.post(f"{V1}/users", json=body, headers=users.headers["admin"])
    assert_422_naming(r, "password", "NUL")


# --- integers and dates beyond what the columns and Python hold ---------------------------------


async def test_ids_beyond_their_columns_are_a_422_naming_the_field(api: Api, users: Users) -> None:
    admin = users.headers["admin"]
    for item_id in (2**31, 2**63, 2**64, 0):
        r = await api.client.get(f"{V1}/wells/{item_id}", headers=admin)
        assert_422_naming(r, "item_id")
    r = await api.client.get(f"{V1}/users/{2**63}", headers=admin)
    assert_422_naming(r, "item_id")
    r = await api.client.post(
        f"{V1}/scada-tags", json={"tag": "T-1", "annulus_id": 2**31}, headers=admin
    )
    assert_422_naming(r, "annulus_id")
    r = await api.client.get(f"{V1}/wells", params={"consequence_level": 2**40}, headers=admin)
    assert_422_naming(r, "consequence_level")


async def test_an_offset_beyond_bigint_is_a_422_naming_it(api: Api, users: Users) -> None:
    # The shared page parameters (services/api/deps.py) declare PostgreSQL's bigint bound,
    # so the value is refused, naming the parameter, before any statement runs.
    for path in ("/wells", "/alerts"):
        r = await api.client.get(
            f"{V1}{path}", params={"offset": 2**64}, headers=users.headers["admin"]
        )
        assert_422_naming(r, "offset", "less than or equal to 9223372036854775807")


async def test_absurd_measurement_ranges_are_a_422_not_a_500(api: Api, users: Users) -> None:
    ids = await build_well(api.client, users.headers["engineer"], name="W-ranges")
    url = f"{V1}/annuli/{ids['annulus']}/measurements"
    viewer = users.headers["viewer"]
    r = await api.client.get(url, params={"resolution": "99999999999d"}, headers=viewer)
    assert_422_naming(r, "resolution", "at most")
    r = await api.client.get(url, params={"to": "0001-01-01T00:00:00Z"}, headers=viewer)
    assert_422_naming(r, "to", "year 1")
    r = await api.client.get(url, params={"to": "0001-01-01T00:00:00+01:00"}, headers=viewer)
    assert_422_naming(r, "to", "year 1 to 9999")
    r = await api.client.get(
        url,
        params={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z", "resolution": "1d"},
        headers=viewer,
    )
    assert_422_naming(r, "resolution", "too fine")
    r = await api.client.get(
        url,
        params={
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-01-02T00:00:00Z",
            "resolution": "9999d",
        },
        headers=viewer,
    )
    assert r.status_code == 200 and r.json()["buckets"] == [], r.text


async def test_a_next_test_beyond_year_9999_is_a_422(api: Api, users: Users) -> None:
    ids = await build_well(api.client, users.headers["engineer"], name="W-tests")
    r = await api.client.patch(
        f"{V1}/barrier-elements/{ids['element']}",
        json={"last_tested_at": "9999-12-01T00:00:00Z"},  # + the SSSV's 182 days
        headers=users.headers["engineer"],
    )
    assert_422_naming(r, "last_tested_at", "after year 9999")
    r = await api.client.patch(
        f"{V1}/barrier-elements/{ids['element']}",
        json={"test_interval_days": 2**31 - 1},
        headers=users.headers["engineer"],
    )
    assert_422_naming(r, "test_interval_days")


# --- strict types and nullability as the OpenAPI says ---------------------------------------------


async def test_lax_coercions_are_refused_in_bodies(api: Api, users: Users) -> None:
    admin = users.headers["admin"]
    body = {"email": "lax@wims.test", "password": "long enough", "role": "viewer"}
    r = await api.client.post(f"{V1}/users", json={**body, "is_active": 0}, headers=admin)
    assert_422_naming(r, "is_active")
    r = await api.client.post(f"{V1}/wells", json={**WELL, "consequence_level": "3"}, headers=admin)
    assert_422_naming(r, "consequence_level")
    r = await api.client.post(f"{V1}/wells", json={**WELL, "measured_depth": "3000"}, headers=admin)
    assert_422_naming(r, "measured_depth")
    r = await api.client.post(f"{V1}/wells", json={**WELL, "spud_date": 0}, headers=admin)
    assert_422_naming(r, "spud_date")
    r = await api.client.post(f"{V1}/wells", json={**WELL, "measured_depth": 3000}, headers=admin)
    assert r.status_code == 201, r.text  # a JSON integer is a number


async def test_null_is_refused_exactly_where_the_openapi_does_not_offer_it(
    api: Api, users: Users
) -> None:
    staff = users.headers["engineer"]
    r = await api.client.post(f"{V1}/wells", json={**WELL, "name": "W-null"}, headers=staff)
    well_id = r.json()["id"]
    r = await api.client.patch(f"{V1}/wells/{well_id}", json={"name": None}, headers=staff)
    assert_422_naming(r, "name")
    r = await api.client.patch(f"{V1}/wells/{well_id}", json={"spud_date": None}, headers=staff)
    assert r.status_code == 200 and r.json()["spud_date"] is None
    schema = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    assert "anyOf" not in schema["WellUpdate"]["properties"]["name"]
    assert {"type": "null"} in schema["WellUpdate"]["properties"]["spud_date"]["anyOf"]


# --- a concurrent delete -------------------------------------------------------------------------


async def test_a_change_to_an_item_deleted_meanwhile_is_a_404_not_a_500(
    api: Api, users: Users, db_engine: Engine
) -> None:
    """Found by schemathesis (two workers: a PATCH of a well and a DELETE of it at once): the
    PATCH committed, the DELETE won, and reading the row back was a 500."""
    engineer = users.headers["engineer"]
    r = await api.client.post(f"{V1}/wells", json={**WELL, "name": "W-race"}, headers=engineer)
    well_id = r.json()["id"]

    def delete_it(session: Session) -> None:  # another client, between commit and read-back
        with db_engine.begin() as conn:
            conn.execute(text("DELETE FROM well WHERE id = :w"), {"w": well_id})

    event.listen(Session, "after_commit", delete_it)
    try:
        r = await api.client.patch(
            f"{V1}/wells/{well_id}", json={"location": "subsea"}, headers=engineer
        )
    finally:
        event.remove(Session, "after_commit", delete_it)
    assert r.status_code == 404 and "deleted meanwhile" in r.json()["detail"], r.text


# --- methods ---------------------------------------------------------------------------------------


async def test_an_unsupported_method_is_a_405_allowing_every_method_of_the_path(
    api: Api, users: Users
) -> None:
    admin = users.headers["admin"]
    r = await api.client.options(f"{V1}/wells", headers=admin)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = await api.client.put(f"{V1}/wells/1", headers=admin)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH"


# --- no parameters in the log ----------------------------------------------------------------------

SECRET = "S3cr3t-Kangaroo-7f1d9c"


def test_nothing_a_client_sent_reaches_the_api_log(stack: Stack, db_engine) -> None:
    """Bad input through the paths that used to log a traceback with the SQL parameters,
    against the API as a process: the secret is in none of its log lines."""
    from shared.contracts.enums import Role

    settings = stack.settings()
    admin_id = make_user(db_engine, "log-admin@wims.test", Role.admin)
    admin = {"Authorization": f"Bearer {token_for(settings, admin_id, Role.admin)}"}
    api = start_service(stack, "api")
    try:
        api.wait_ready()
        with httpx.Client(base_url=f"{api.base_url}{V1}", timeout=30) as client:
            answers = [
                client.post(
                    "/auth/token", data={"username": f"{SECRET}{NUL}@x", "password": SECRET}
                ),
                client.get("/wells", params={"field": f"{SECRET}{NUL}"}, headers=admin),
                client.get("/fleet", params={"field": f"{SECRET}{NUL}"}, headers=admin),
                client.post("/wells", json={**WELL, "name": f"{SECRET}{NUL}"}, headers=admin),
                client.get("/wells", params={"offset": f"{2**64}"}, headers=admin),
            ]
    finally:
        api.terminate()
    log = api.log_path.read_text(errors="replace")
    assert log.strip(), "the API process logged nothing: the check below would prove nothing"
    assert SECRET not in log
    assert "parameters" not in log.lower(), log[-3000:]
    assert [a.status_code for a in answers] == [422] * len(answers), [a.text for a in answers]
