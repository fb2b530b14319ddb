"""The RBAC matrix: every route x (anonymous, viewer, engineer, admin) -> the expected status.

One row per route: the least role it needs and the status it answers when allowed.
Anonymous gets 401, a lower role 403, never a silent empty answer. A last test checks the
table covers every route the app serves, so a new route cannot slip in unchecked.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from services.api.app import create_app
from shared.contracts.enums import Role
from shared.persistence.models import AlertRecord, IntegritySnapshot, MaaspResult, Task
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    NOW,
    PASSWORD,
    Api,
    Users,
    api_fixture,
    build_well,
    users_fixture,
)

ROLES = ("anonymous", "viewer", "engineer", "admin")
RANK = {"anonymous": -1, "viewer": 0, "engineer": 1, "admin": 2}
PUBLIC = None

# A body maker (ids, role) -> JSON, None, or "LOGIN" / "MATRIX" for the two special bodies.
Body = Callable[[dict[str, int], str], Any] | str | None

# (method, route template, least role (None: public), status when allowed, body(ids, role))
MATRIX: list[tuple[str, str, Role | None, int, Body]] = [
    ("GET", "/healthz", PUBLIC, 200, None),
    ("GET", "/readyz", PUBLIC, 200, None),
    ("GET", "/metrics", PUBLIC, 200, None),
    ("POST", "/api/v1/auth/token", PUBLIC, 200, "LOGIN"),
    ("GET", "/api/v1/auth/me", Role.viewer, 200, None),
    ("POST", "/api/v1/auth/logout", Role.viewer, 204, None),
    # queries
    ("GET", "/api/v1/wells/{well_id}/state", Role.viewer, 200, None),
    ("GET", "/api/v1/annuli/{annulus_id}/measurements", Role.viewer, 200, None),
    ("GET", "/api/v1/annuli/{annulus_id}/maasp", Role.viewer, 200, None),
    ("GET", "/api/v1/wells/{well_id}/integrity", Role.viewer, 200, None),
    ("GET", "/api/v1/wells/{well_id}/integrity/history", Role.viewer, 200, None),
    ("GET", "/api/v1/fleet", Role.viewer, 200, None),
    # alerts
    ("GET", "/api/v1/alerts", Role.viewer, 200, None),
    ("GET", "/api/v1/alerts/{item_id}", Role.viewer, 200, None),
    ("POST", "/api/v1/alerts/{item_id}/ack", Role.engineer, 200, None),
    # admin-only resources
    ("GET", "/api/v1/users", Role.admin, 200, None),
    (
        "POST",
        "/api/v1/users",
        Role.admin,
        201,
        lambda ids, role: {
            "email": f"u-{role}@wims.test",
            "password": "12345678",
            "role": "viewer",
        },
    ),
    ("GET", "/api/v1/users/{item_id}", Role.admin, 200, None),
    ("PATCH", "/api/v1/users/{item_id}", Role.admin, 200, lambda ids, role: {"full_name": role}),
    ("DELETE", "/api/v1/users/{item_id}", Role.admin, 204, None),
    ("GET", "/api/v1/api-keys", Role.admin, 200, None),
    ("POST", "/api/v1/api-keys", Role.admin, 201, lambda ids, role: {"name": role, "source": "pi"}),
    ("GET", "/api/v1/api-keys/{item_id}", Role.admin, 200, None),
    ("DELETE", "/api/v1/api-keys/{item_id}", Role.admin, 200, None),
    ("GET", "/api/v1/risk-matrix", Role.viewer, 200, None),
    ("PUT", "/api/v1/risk-matrix", Role.admin, 200, "MATRIX"),
    (
        "PATCH",
        "/api/v1/risk-matrix/{probability_level}/{consequence_level}",
        Role.admin,
        200,
        lambda ids, role: {"category": "high"},
    ),
    # deviation survey and derived critical points
    ("GET", "/api/v1/wells/{well_id}/survey", Role.viewer, 200, None),
    (
        "PUT",
        "/api/v1/wells/{well_id}/survey",
        Role.engineer,
        200,
        lambda ids, role: {"stations": [{"md_m": 0, "inclination_deg": 0, "azimuth_deg": 0}]},
    ),
    (
        "PUT",
        "/api/v1/wells/{well_id}/survey/csv",
        Role.engineer,
        200,
        lambda ids, role: "md_m,inclination_deg,azimuth_deg\n0,0,0\n100,2,30\n",
    ),
    ("DELETE", "/api/v1/wells/{well_id}/survey", Role.admin, 204, None),
    ("GET", "/api/v1/annuli/{annulus_id}/derived-critical-points", Role.viewer, 200, None),
    (
        "POST",
        "/api/v1/annuli/{annulus_id}/derived-critical-points/accept",
        Role.engineer,
        200,
        None,
    ),
]


def _crud(
    collection: str | None,
    item_prefix: str,
    create: Body,
    update: dict[str, Any],
    flat: bool = False,
) -> list[tuple[str, str, Role | None, int, Body]]:
    rows: list[tuple[str, str, Role | None, int, Body]] = []
    if collection:
        rows += [
            ("GET", collection, Role.viewer, 200, None),
            ("POST", collection, Role.engineer, 201, create),
        ]
    item = f"/api/v1/{item_prefix}/{{item_id}}"
    rows += [
        ("GET", item, Role.viewer, 200, None),
        ("PATCH", item, Role.engineer, 200, lambda ids, role: update),
        ("DELETE", item, Role.admin, 204, None),
    ]
    return rows


MATRIX += _crud(
    "/api/v1/wells",
    "wells",
    lambda ids, role: {
        "name": f"R-{role}",
        "field": "F",
        "type": "observation",
        "location": "onshore",
        "measured_depth": 1000,
    },
    {"status": "shut-in"},
)
MATRIX += _crud(
    "/api/v1/wells/{well_id}/casing-strings",
    "casing-strings",
    lambda ids, role: {
        "name": f"c-{role}",
        "casing_type": "conductor",
        "outer_diameter_in": 30,
        "inner_diameter_in": 28,
        "top_md": 0,
        "bottom_md": 100,
    },
    {"grade": "K55"},
)
MATRIX += _crud(
    "/api/v1/wells/{well_id}/tubing-strings",
    "tubing-strings",
    lambda ids, role: {
        "name": f"t-{role}",
        "outer_diameter_in": 2.375,
        "inner_diameter_in": 1.995,
        "top_md": 0,
        "bottom_md": 500,
    },
    {"grade": "L80"},
)
MATRIX += _crud(
    "/api/v1/wells/{well_id}/cement-intervals",
    "cement-intervals",
    lambda ids, role: {"casing_id": ids["casing"], "top_md": 3000, "bottom_md": 3400},
    {"verified_by": "CBL"},
)
MATRIX += _crud(
    "/api/v1/wells/{well_id}/annuli",
    "annuli",
    lambda ids, role: {"name": f"X-{role}", "fluid_gradient_bar_per_m": 0.1},
    {"fluid_gradient_bar_per_m": 0.11},
)
MATRIX += _crud(
    "/api/v1/annuli/{annulus_id}/critical-points",
    "critical-points",
    lambda ids, role: {
        "label": f"p-{role}",
        "point_type": "weak_formation",
        "depth_md": 1500,
        "tvd_m": 1400,
        "pressure_limit_bar": 300,
    },
    {"pressure_limit_bar": 360},
)
MATRIX += _crud(
    "/api/v1/scada-tags",
    "scada-tags",
    lambda ids, role: {"tag": f"TAG-{role}", "annulus_id": ids["annulus"]},
    {"tag": "TAG-renamed"},
)
MATRIX += _crud(
    # One primary and one secondary per well: each role creates in a well of its own.
    "/api/v1/wells/{well_id}/barrier-envelopes",
    "barrier-envelopes",
    lambda ids, role: {"type": "secondary", "name": "secondary"},
    {"description": "checked"},
)
MATRIX += _crud(
    "/api/v1/barrier-envelopes/{envelope_id}/barrier-elements",
    "barrier-elements",
    lambda ids, role: {"name": f"e-{role}", "element_type": "tree_valve"},
    {"status": "ok"},
)
MATRIX += _crud(
    "/api/v1/barrier-elements/{barrier_element_id}/tests",
    "barrier-tests",
    lambda ids, role: {
        "test_type": "functional",
        "test_date": NOW.isoformat(),
        "result": "pass",
    },
    {"comments": "ok"},
)
MATRIX += _crud(
    "/api/v1/tasks",
    "tasks",
    lambda ids, role: {"well_id": ids["well"], "title": f"task by {role}"},
    {"priority": "high"},
)

# The item each "/{prefix}/{item_id}" route acts on.
ITEM_KEY = {
    "wells": "well",
    "casing-strings": "casing",
    "tubing-strings": "tubing",
    "cement-intervals": "cement",
    "annuli": "annulus",
    "critical-points": "cp_packer",
    "scada-tags": "tag",
    "barrier-envelopes": "envelope",
    "barrier-elements": "element",
    "barrier-tests": "test",
    "tasks": "task",
    "users": "other_user",
    "api-keys": "api_key",
    "alerts": "alert",
}


async def build_world(api: Api, users: Users, db_engine: Engine) -> dict[str, int]:
    admin = users.headers["admin"]
    c = api.client
    ids = await build_well(c, admin)

    async def post(path: str, body: dict[str, Any]) -> int:
        r = await c.post(f"/api/v1{path}", json=body, headers=admin)
        assert r.status_code == 201, (path, r.text)
        return r.json()["id"]

    ids["cement"] = await post(
        f"/wells/{ids['well']}/cement-intervals",
        {"casing_id": ids["casing"], "top_md": 2800, "bottom_md": 3400},
    )
    ids["tag"] = await post("/scada-tags", {"tag": "W1-A", "annulus_id": ids["annulus"]})
    ids["test"] = await post(
        f"/barrier-elements/{ids['element']}/tests",
        {"test_type": "inflow", "test_date": NOW.isoformat(), "result": "pass"},
    )
    ids["task"] = await post("/tasks", {"well_id": ids["well"], "title": "look at it"})
    ids["other_user"] = await post(
        "/users", {"email": "other@wims.test", "password": "12345678", "role": "viewer"}
    )
    ids["api_key"] = await post("/api-keys", {"name": "k", "source": "pi"})
    for role in ROLES:
        ids[f"well_{role}"] = await post(
            "/wells",
            {
                "name": f"own-{role}",
                "field": "F",
                "type": "observation",
                "location": "onshore",
                "measured_depth": 500,
            },
        )
    with Session(db_engine) as s, s.begin():
        alert = AlertRecord(
            event_id=uuid4(),
            kind="maasp_warning",
            severity="warning",
            well_id=ids["well"],
            annulus_id=ids["annulus"],
            ts=NOW,
            message="A annulus at 82 % of MAASP",
            payload={},
            kafka_partition=0,
            kafka_offset=0,
        )
        s.add(alert)
        s.add(
            IntegritySnapshot(
                event_id=uuid4(),
                well_id=ids["well"],
                created_at=NOW,
                overall_status="green",
                primary_status="intact",
                secondary_status="intact",
                probability=1,
                consequence=3,
                risk_score=12,
                risk_category="low",
            )
        )
        s.add(
            MaaspResult(
                annulus_id=ids["annulus"],
                config_version=1,
                maasp_bar=200.0,
                limiting_point_name="packer",
                computed_at=datetime.now(UTC),
            )
        )
        s.flush()
        ids["alert"] = alert.id
        assert s.query(Task).count() == 1
    return ids


def concrete(template: str, ids: dict[str, int], role: str) -> str:
    prefix = template.removeprefix("/api/v1/").split("/")[0]
    values = {
        "well_id": ids["well"],
        "annulus_id": ids["annulus"],
        "envelope_id": ids["envelope"],
        "barrier_element_id": ids["element"],
        "probability_level": 2,
        "consequence_level": 3,
    }
    if template.endswith("/barrier-envelopes"):
        values["well_id"] = ids[f"well_{role}"]
    if "{item_id}" in template:
        values["item_id"] = ids[ITEM_KEY[prefix]]
    return template.format(**values)


def expected(least: Role | None, ok: int, role: str) -> int:
    if least is None:
        return ok
    if role == "anonymous":
        return 401
    return ok if RANK[role] >= RANK[least.value] else 403


@pytest.mark.parametrize(
    ("method", "template", "least", "ok", "body"),
    MATRIX,
    ids=[f"{m} {t.removeprefix('/api/v1')}" for m, t, *_ in MATRIX],
)
async def test_route_answers_each_role_as_the_matrix_says(
    api: Api,
    users: Users,
    db_engine: Engine,
    method: str,
    template: str,
    least: Role | None,
    ok: int,
    body: Any,
) -> None:
    ids = await build_world(api, users, db_engine)
    got: dict[str, int] = {}
    want: dict[str, int] = {}
    for role in ROLES:  # lowest first: only the last allowed role deletes
        url = concrete(template, ids, role)
        headers = users.headers[role]
        if body == "LOGIN":
            r = await api.client.post(
                url, data={"username": "admin@wims.test", "password": PASSWORD}
            )
        elif body == "MATRIX":
            cells = (
                await api.client.get("/api/v1/risk-matrix", headers=users.headers["admin"])
            ).json()
            r = await api.client.put(url, json=cells, headers=headers)
        else:
            payload = body(ids, role) if body else None
            r = await api.client.request(method, url, json=payload, headers=headers)
        got[role] = r.status_code
        want[role] = expected(least, ok, role)
        if r.status_code in (401, 403):
            assert r.json()["detail"], "a refusal says why"
        if role == "anonymous" and r.status_code == 401:
            assert r.headers.get("WWW-Authenticate") == "Bearer"
    assert got == want


def test_matrix_covers_every_route() -> None:
    from shared.infrastructure.settings import Settings

    spec = create_app(Settings(environment="test")).openapi()
    served = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    tabled = {(m, t) for m, t, *_ in MATRIX}
    # The live stream never ends, so it is checked against a real server in test_api_sse.
    elsewhere = {("GET", "/api/v1/alerts/stream")}
    assert served - tabled - elsewhere == set()
    assert tabled - served == set()
