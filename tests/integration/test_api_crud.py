"""CRUD round trips for every resource, and the checks an engineer expects (422 naming the
field, 409 on a duplicate name), through the real API on the real database."""

from typing import Any

import pytest

from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    NOW,
    Api,
    Users,
    api_fixture,
    build_well,
    users_fixture,
)

V1 = "/api/v1"


# (resource, collection path from the well ids, create body, patch body, field to check)
def _cases(ids: dict[str, int]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    w, a, el = ids["well"], ids["annulus"], ids["element"]
    return [
        ("wells", "/wells", {**_well("W-2")}, {"status": "shut-in"}),
        (
            "casing-strings",
            f"/wells/{w}/casing-strings",
            {
                "name": "13 3/8 intermediate",
                "casing_type": "intermediate",
                "outer_diameter_in": 13.375,
                "inner_diameter_in": 12.415,
                "top_md": 0,
                "bottom_md": 2000,
                "burst_limit_bar": 370,
            },
            {"burst_limit_bar": 350.5},
        ),
        (
            "tubing-strings",
            f"/wells/{w}/tubing-strings",
            {
                "name": "2 7/8 kill string",
                "outer_diameter_in": 2.875,
                "inner_diameter_in": 2.441,
                "top_md": 0,
                "bottom_md": 1000,
            },
            {"grade": "L80"},
        ),
        (
            "cement-intervals",
            f"/wells/{w}/cement-intervals",
            {"casing_id": ids["casing"], "top_md": 2500, "bottom_md": 3400},
            {"verified_by": "CBL"},
        ),
        (
            "annuli",
            f"/wells/{w}/annuli",
            {
                "name": "B",
                "outer_casing_string_id": None,
                "inner_casing_string_id": ids["casing"],
                "fluid_gradient_bar_per_m": 0.12,
            },
            {"safety_factor": 0.8},
        ),
        (
            "critical-points",
            f"/annuli/{a}/critical-points",
            {
                "label": "shoe",
                "point_type": "shoe",
                "depth_md": 3400,
                "tvd_m": 3100,
                "pressure_limit_bar": 550,
            },
            {"pressure_limit_bar": 540.0},
        ),
        (
            "scada-tags",
            "/scada-tags",
            {"tag": "PI:NORTH.W1.A.PRESS", "annulus_id": a},
            {"tag": "PI:NORTH.W1.A.P"},
        ),
        (
            "barrier-envelopes",
            f"/wells/{w}/barrier-envelopes",
            {"type": "secondary", "name": "secondary"},
            {"description": "casing, cement, wellhead"},
        ),
        (
            "barrier-elements",
            f"/barrier-envelopes/{ids['envelope']}/barrier-elements",
            {"name": "production packer", "element_type": "packer", "depth_md": 3250},
            {"status": "degraded"},
        ),
        (
            "barrier-tests",
            f"/barrier-elements/{el}/tests",
            {
                "test_type": "leak-rate",
                "test_date": NOW.isoformat(),
                "result": "pass",
                "leak_rate": 12.0,
                "leak_rate_unit": "cm3/min",
            },
            {"comments": "witnessed by the OIM"},
        ),
        (
            "tasks",
            "/tasks",
            {"well_id": w, "title": "Check A annulus valve", "priority": "high"},
            {"status": "in_progress"},
        ),
        (
            "users",
            "/users",
            {"email": "new@wims.test", "password": "long enough pw", "role": "viewer"},
            {"role": "engineer"},
        ),
    ]


def _well(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "field": "South",
        "type": "gas_producer",
        "location": "subsea",
        "measured_depth": 4000.0,
    }


CASE_NAMES = [
    "wells",
    "casing-strings",
    "tubing-strings",
    "cement-intervals",
    "annuli",
    "critical-points",
    "scada-tags",
    "barrier-envelopes",
    "barrier-elements",
    "barrier-tests",
    "tasks",
    "users",
]


@pytest.mark.parametrize("name", CASE_NAMES)
async def test_crud_round_trip(api: Api, users: Users, name: str) -> None:
    admin = users.headers["admin"]
    ids = await build_well(api.client, admin)
    resource, collection, body, patch = next(c for c in _cases(ids) if c[0] == name)
    c = api.client

    created = await c.post(V1 + collection, json=body, headers=admin)
    assert created.status_code == 201, created.text
    item = created.json()
    for key, value in body.items():
        if key == "password":
            assert "password" not in item and "password_hash" not in item
        elif key == "test_date":
            assert item[key].startswith(NOW.strftime("%Y-%m-%dT%H:%M:%S"))
        else:
            assert item[key] == value, key
    url = f"{V1}/{resource}/{item['id']}"

    got = await c.get(url, headers=admin)
    assert got.status_code == 200 and got.json() == item

    listed = await c.get(V1 + collection, headers=admin)
    assert listed.status_code == 200
    assert item["id"] in [x["id"] for x in listed.json()]
    assert int(listed.headers["X-Total-Count"]) == len(listed.json())

    changed = await c.patch(url, json=patch, headers=admin)
    assert changed.status_code == 200, changed.text
    for key, value in patch.items():
        assert changed.json()[key] == value
    assert (await c.get(url, headers=admin)).json()[next(iter(patch))] == next(iter(patch.values()))

    deleted = await c.delete(url, headers=admin)
    assert deleted.status_code == 204
    assert (await c.get(url, headers=admin)).status_code == 404


async def test_api_key_secret_shown_once_and_revoked_by_delete(api: Api, users: Users) -> None:
    admin = users.headers["admin"]
    r = await api.client.post(
        f"{V1}/api-keys", json={"name": "PI north", "source": "pi-north"}, headers=admin
    )
    assert r.status_code == 201
    key = r.json()
    assert key["secret"].startswith(key["key_prefix"]) and key["revoked_at"] is None
    got = await api.client.get(f"{V1}/api-keys/{key['id']}", headers=admin)
    assert "secret" not in got.json()
    revoked = await api.client.delete(f"{V1}/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    listed = await api.client.get(f"{V1}/api-keys?revoked=false", headers=admin)
    assert key["id"] not in [k["id"] for k in listed.json()]


async def test_risk_matrix_read_and_change_one_cell(api: Api, users: Users) -> None:
    r = await api.client.get(f"{V1}/risk-matrix", headers=users.headers["viewer"])
    assert r.status_code == 200 and len(r.json()["cells"]) == 25
    r = await api.client.patch(
        f"{V1}/risk-matrix/5/5", json={"category": "high"}, headers=users.headers["admin"]
    )
    assert r.status_code == 200 and r.json()["category"] == "high"
    cells = r = (await api.client.get(f"{V1}/risk-matrix", headers=users.headers["viewer"])).json()[
        "cells"
    ]
    assert {"probability_level": 5, "consequence_level": 5, "category": "high"} in cells
    # Put the seed back for the other tests (the clean_db fixture keeps the matrix).
    cells[-1]["category"] = "extreme"
    r = await api.client.put(
        f"{V1}/risk-matrix", json={"cells": cells}, headers=users.headers["admin"]
    )
    assert r.status_code == 200
    bad = await api.client.put(
        f"{V1}/risk-matrix", json={"cells": cells[:24]}, headers=users.headers["admin"]
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cells"


# --- validation: (description, method, path template, body, expected status, field) -------------

INVALID = [
    (
        "casing top below bottom",
        "post",
        "/wells/{well}/casing-strings",
        {
            "name": "x",
            "casing_type": "surface",
            "outer_diameter_in": 20,
            "inner_diameter_in": 19,
            "top_md": 500,
            "bottom_md": 400,
        },
        422,
        "top_md",
    ),
    (
        "casing below the well",
        "post",
        "/wells/{well}/casing-strings",
        {
            "name": "x",
            "casing_type": "surface",
            "outer_diameter_in": 20,
            "inner_diameter_in": 19,
            "top_md": 0,
            "bottom_md": 3600,
        },
        422,
        "bottom_md",
    ),
    (
        "casing inner diameter too big",
        "post",
        "/wells/{well}/casing-strings",
        {
            "name": "x",
            "casing_type": "surface",
            "outer_diameter_in": 20,
            "inner_diameter_in": 20.5,
            "top_md": 0,
            "bottom_md": 400,
        },
        422,
        "inner_diameter_in",
    ),
    (
        "casing type not an enum value",
        "post",
        "/wells/{well}/casing-strings",
        {
            "name": "x",
            "casing_type": "sleeve",
            "outer_diameter_in": 20,
            "inner_diameter_in": 19,
            "top_md": 0,
            "bottom_md": 400,
        },
        422,
        "casing_type",
    ),
    (
        "negative depth",
        "post",
        "/wells/{well}/casing-strings",
        {
            "name": "x",
            "casing_type": "surface",
            "outer_diameter_in": 20,
            "inner_diameter_in": 19,
            "top_md": -5,
            "bottom_md": 400,
        },
        422,
        "top_md",
    ),
    (
        "duplicate casing name in a well",
        "post",
        "/wells/{well}/casing-strings",
        {
            "name": "9 5/8 production",
            "casing_type": "production",
            "outer_diameter_in": 9.625,
            "inner_diameter_in": 8.5,
            "top_md": 0,
            "bottom_md": 400,
        },
        409,
        "name",
    ),
    (
        "tubing packer outside the string",
        "post",
        "/wells/{well}/tubing-strings",
        {
            "name": "t2",
            "outer_diameter_in": 3.5,
            "inner_diameter_in": 2.9,
            "top_md": 0,
            "bottom_md": 1000,
            "packer_depth_md": 1200,
        },
        422,
        "packer_depth_md",
    ),
    (
        "annulus inner string does not fit",
        "post",
        "/wells/{well}/annuli",
        {
            "name": "X",
            "inner_casing_string_id": "{casing}",
            "outer_casing_string_id": "{casing}",
            "fluid_gradient_bar_per_m": 0.1,
        },
        422,
        "inner_casing_string_id",
    ),
    (
        "annulus with two inner strings",
        "post",
        "/wells/{well}/annuli",
        {
            "name": "X",
            "inner_tubing_string_id": "{tubing}",
            "inner_casing_string_id": "{casing}",
            "fluid_gradient_bar_per_m": 0.1,
        },
        422,
        "inner_casing_string_id",
    ),
    (
        "annulus inner string of another well",
        "post",
        "/wells/{well}/annuli",
        {"name": "X", "inner_tubing_string_id": 99999, "fluid_gradient_bar_per_m": 0.1},
        422,
        "inner_tubing_string_id",
    ),
    (
        "annulus thresholds crossed",
        "post",
        "/wells/{well}/annuli",
        {
            "name": "X",
            "fluid_gradient_bar_per_m": 0.1,
            "warning_threshold": 1.1,
            "exceeded_threshold": 1.0,
        },
        422,
        "warning_threshold",
    ),
    (
        "annulus safety factor above 1",
        "patch",
        "/annuli/{annulus}",
        {"safety_factor": 1.2},
        422,
        "safety_factor",
    ),
    (
        "critical point below the well",
        "post",
        "/annuli/{annulus}/critical-points",
        {
            "label": "deep",
            "point_type": "shoe",
            "depth_md": 3600,
            "tvd_m": 3100,
            "pressure_limit_bar": 500,
        },
        422,
        "depth_md",
    ),
    (
        "critical point tvd deeper than md",
        "post",
        "/annuli/{annulus}/critical-points",
        {
            "label": "odd",
            "point_type": "shoe",
            "depth_md": 1000,
            "tvd_m": 1100,
            "pressure_limit_bar": 500,
        },
        422,
        "tvd_m",
    ),
    (
        "critical point limit not positive",
        "post",
        "/annuli/{annulus}/critical-points",
        {
            "label": "zero",
            "point_type": "shoe",
            "depth_md": 1000,
            "tvd_m": 900,
            "pressure_limit_bar": 0,
        },
        422,
        "pressure_limit_bar",
    ),
    (
        "critical point type unknown",
        "post",
        "/annuli/{annulus}/critical-points",
        {
            "label": "z",
            "point_type": "sidetrack",
            "depth_md": 1000,
            "tvd_m": 900,
            "pressure_limit_bar": 10,
        },
        422,
        "point_type",
    ),
    (
        "well shallower than its casing",
        "patch",
        "/wells/{well}",
        {"measured_depth": 3300},
        422,
        "measured_depth",
    ),
    (
        "well tvd deeper than md",
        "patch",
        "/wells/{well}",
        {"true_vertical_depth": 3600},
        422,
        "true_vertical_depth",
    ),
    (
        "well consequence out of range",
        "patch",
        "/wells/{well}",
        {"consequence_level": 6},
        422,
        "consequence_level",
    ),
    ("well name taken", "post", "/wells", {**_well("W-1")}, 409, "name"),
    ("null for a required column", "patch", "/wells/{well}", {"field": None}, 422, "field"),
    (
        "unknown field (typo)",
        "patch",
        "/wells/{well}",
        {"measured_dept": 3000},
        422,
        "measured_dept",
    ),
    (
        "cement on another well's casing",
        "post",
        "/wells/{well}/cement-intervals",
        {"casing_id": 99999, "top_md": 100, "bottom_md": 200},
        422,
        "casing_id",
    ),
    (
        "element below the well",
        "post",
        "/barrier-envelopes/{envelope}/barrier-elements",
        {"name": "deep", "element_type": "packer", "depth_md": 9000},
        422,
        "depth_md",
    ),
    (
        "second primary envelope",
        "post",
        "/wells/{well}/barrier-envelopes",
        {"type": "primary", "name": "again"},
        409,
        "type",
    ),
    (
        "test in the future",
        "post",
        "/barrier-elements/{element}/tests",
        {"test_type": "pressure", "test_date": "2999-01-01T00:00:00Z", "result": "pass"},
        422,
        "test_date",
    ),
    (
        "test result neither pass nor fail",
        "post",
        "/barrier-elements/{element}/tests",
        {"test_type": "pressure", "test_date": "2025-01-01T00:00:00Z", "result": "maybe"},
        422,
        "result",
    ),
    (
        "task annulus of another well",
        "post",
        "/tasks",
        {"well_id": "{well}", "annulus_id": 99999, "title": "x"},
        422,
        "annulus_id",
    ),
    (
        "tag on a missing annulus",
        "post",
        "/scada-tags",
        {"tag": "T", "annulus_id": 99999},
        422,
        "annulus_id",
    ),
    ("page size above the maximum", "get", "/wells?limit=100000", None, 422, "limit"),
    ("sort on an unknown key", "get", "/wells?sort=colour", None, 422, "sort"),
    ("NaN depth", "post", "/wells/{well}/casing-strings", "RAW:NaN", 422, "top_md"),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [c[1:] for c in INVALID],
    ids=[c[0] for c in INVALID],
)
async def test_invalid_input_names_the_field(
    api: Api, users: Users, method: str, path: str, body: Any, status: int, field: str
) -> None:
    engineer = users.headers["engineer"]
    ids = await build_well(api.client, users.headers["admin"])
    url = V1 + path.format(**ids)
    if body == "RAW:NaN":
        raw = '{"name": "x", "casing_type": "surface", "outer_diameter_in": 20, "inner_diameter_in": 19, "top_md": NaN, "bottom_md": 400}'
        r = await api.client.post(
            url, content=raw, headers={**engineer, "Content-Type": "application/json"}
        )
    else:
        r = await api.client.request(
            method, url, json=_fill(body, ids) if body is not None else None, headers=engineer
        )
    assert r.status_code == status, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors][:1] == [field], r.json()
    assert errors[0]["reason"]


async def test_a_failed_check_changes_nothing(api: Api, users: Users) -> None:
    admin = users.headers["admin"]
    ids = await build_well(api.client, admin)
    before = (await api.client.get(f"{V1}/wells/{ids['well']}", headers=admin)).json()
    r = await api.client.patch(
        f"{V1}/wells/{ids['well']}", json={"name": "renamed", "measured_depth": 10}, headers=admin
    )
    assert r.status_code == 422
    assert (await api.client.get(f"{V1}/wells/{ids['well']}", headers=admin)).json() == before


async def test_lists_filter_sort_and_paginate(api: Api, users: Users) -> None:
    admin = users.headers["admin"]
    for i, field in enumerate(["North", "South", "North", "East", "North"]):
        body = {**_well(f"P-{i}"), "field": field}
        assert (await api.client.post(f"{V1}/wells", json=body, headers=admin)).status_code == 201
    r = await api.client.get(f"{V1}/wells?field=North&sort=-name&limit=2", headers=admin)
    assert [w["name"] for w in r.json()] == ["P-4", "P-2"]
    assert r.headers["X-Total-Count"] == "3"
    r = await api.client.get(f"{V1}/wells?field=North&sort=-name&limit=2&offset=2", headers=admin)
    assert [w["name"] for w in r.json()] == ["P-0"]


async def test_engineer_cannot_rewrite_an_auto_task_but_can_close_it(
    api: Api, users: Users, db_engine: Any
) -> None:
    from sqlalchemy.orm import Session

    from shared.persistence.models import Task

    ids = await build_well(api.client, users.headers["admin"])
    with Session(db_engine) as s, s.begin():
        task = Task(
            well_id=ids["well"],
            title="MAASP exceeded on A",
            trigger_type="maasp_exceed",
            target=f"annulus:{ids['annulus']}",
            auto_generated=True,
            priority="critical",
        )
        s.add(task)
        s.flush()
        task_id = task.id
    eng = users.headers["engineer"]
    r = await api.client.patch(
        f"{V1}/tasks/{task_id}", json={"title": "nothing to see"}, headers=eng
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "title"
    r = await api.client.patch(f"{V1}/tasks/{task_id}", json={"status": "done"}, headers=eng)
    assert r.status_code == 200 and r.json()["closed_at"] is not None
    created = await api.client.post(
        f"{V1}/tasks", json={"well_id": ids["well"], "title": "manual"}, headers=eng
    )
    assert created.json()["trigger_type"] == "manual" and created.json()["auto_generated"] is False
