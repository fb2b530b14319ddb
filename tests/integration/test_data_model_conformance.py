"""The specification's data model (tests/spec/data_model.json) against what WIMS exposes:
the ORM, the database (information_schema and pg_enum) and the served /openapi.json.

For each entity and field: the column exists under the specification's name (or the
documented mapping), a value set is the specification's (all of it; exactly it unless the
specification says "etc."), the API's response carries the field and its request accepts
it, and nothing the specification does not name is required to create the record.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

import shared.persistence.models as models
from shared.domain.risk import DEFAULT_RISK_MATRIX
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    Users,
    api_fixture,
    build_well,
    users_fixture,
)

SPEC = json.loads((Path(__file__).parents[1] / "spec" / "data_model.json").read_text())
ENTITIES: dict[str, dict[str, Any]] = SPEC["entities"]


def _names(entity: dict[str, Any], field: str, where: str) -> list[str]:
    """The name(s) the field goes by in ``where`` (column, request, response)."""
    mapped = entity.get("api_names", {}).get(field)
    if mapped is not None and where in mapped:
        return list(mapped[where])
    return [field]


def _check_values(spec: dict[str, Any], found: set[str], where: str) -> None:
    wanted = set(spec["values"])
    assert wanted <= found, f"{where}: missing values {sorted(wanted - found)}"
    if not spec.get("open"):
        assert found == wanted, f"{where}: values beyond the specification {sorted(found - wanted)}"


def _value_fields(entity: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f, s) for f, s in entity["fields"].items() if "values" in s and not s.get("free_text")]


@pytest.fixture(scope="module")
async def openapi(api: Api) -> dict[str, Any]:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _enum(doc: dict[str, Any], prop: dict[str, Any]) -> set[str]:
    """Every string value a property's schema allows (through $ref, anyOf and const)."""
    prop = _resolve(doc, prop)
    found = set(prop.get("enum", ()))
    if "const" in prop:
        found.add(prop["const"])
    for option in prop.get("anyOf", ()):
        found |= _enum(doc, option)
    return found - {None}


@pytest.mark.parametrize("name", sorted(ENTITIES))
def test_orm_has_every_field_and_value_set(name: str) -> None:
    entity = ENTITIES[name]
    model = getattr(models, entity["orm"])
    columns = model.__table__.columns
    assert model.__tablename__ == entity["table"]
    for field in entity["fields"]:
        for column in _names(entity, field, "column"):
            assert column in columns, f"{name}.{field}: no column {column}"
    for field, spec in _value_fields(entity):
        _check_values(spec, set(columns[field].type.enums), f"ORM {name}.{field}")
    default = entity["fields"].get("safety_factor", {}).get("default")
    if default is not None:
        assert columns["safety_factor"].server_default.arg.text == str(default)


@pytest.mark.parametrize("name", sorted(ENTITIES))
def test_database_has_every_column_and_value_set(name: str, db_engine: Engine) -> None:
    entity = ENTITIES[name]
    with db_engine.connect() as conn:
        udt = dict(
            conn.execute(
                text(
                    "SELECT column_name, udt_name FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = :t"
                ),
                {"t": entity["table"]},
            ).all()
        )
        for field in entity["fields"]:
            for column in _names(entity, field, "column"):
                assert column in udt, f"{entity['table']}: no column {column} ({name}.{field})"
        for field, spec in _value_fields(entity):
            labels = conn.scalars(
                text(
                    "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
                    " WHERE t.typname = :u"
                ),
                {"u": udt[field]},
            ).all()
            _check_values(spec, set(labels), f"database {entity['table']}.{field}")


@pytest.mark.parametrize("name", sorted(ENTITIES))
def test_openapi_response_carries_every_field(name: str, openapi: dict[str, Any]) -> None:
    entity = ENTITIES[name]
    schema = openapi["components"]["schemas"][entity["response"]]
    exempt = entity.get("api_response_exempt", {})
    for field in entity["fields"]:
        if field in exempt:
            continue
        for prop in _names(entity, field, "response"):
            assert prop in schema["properties"], f"{entity['response']}: no {prop} ({field})"
    for field, spec in _value_fields(entity):
        if field not in exempt:
            prop = schema["properties"][field]
            _check_values(spec, _enum(openapi, prop), f"{entity['response']}.{field}")


@pytest.mark.parametrize("name", sorted(n for n, e in ENTITIES.items() if e["request"]))
def test_openapi_request_accepts_every_field_and_requires_nothing_else(
    name: str, openapi: dict[str, Any]
) -> None:
    entity = ENTITIES[name]
    schema = openapi["components"]["schemas"][entity["request"]]
    exempt = entity.get("api_request_exempt", {})
    accepted: set[str] = set()
    for field in entity["fields"]:
        if field in exempt:
            continue
        names = _names(entity, field, "request")
        for prop in names:
            assert prop in schema["properties"], f"{entity['request']}: no {prop} ({field})"
        accepted |= set(names)
    beyond = set(schema.get("required", ())) - accepted
    assert not beyond, f"{entity['request']} requires fields the specification does not: {beyond}"
    for field, spec in _value_fields(entity):
        if field in exempt or spec.get("open"):
            continue  # an open set: the API may take a subset (manual tasks only)
        _check_values(spec, _enum(openapi, schema["properties"][field]), entity["request"])


# --- creating every entity with exactly the specification's fields ---------------------------


async def _create(
    api: Api, admin: dict[str, str], path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST the body; it must be accepted (201) and read back as sent."""
    r = await api.client.post(f"/api/v1{path}", json=body, headers=admin)
    assert r.status_code == 201, (path, r.text)
    item = r.json()
    for key, value in body.items():
        if key == "password":
            assert "password_hash" not in item and "password" not in item
        elif key.endswith("_date"):
            assert item[key].startswith(value[:19]), key
        else:
            assert item[key] == value, (path, key)
    return item


async def _create_user_and_well(api: Api, admin: dict[str, str]) -> tuple[dict, dict]:
    user = await _create(
        api,
        admin,
        "/users",
        {
            "email": "spec@wims.test",
            "password": "long enough pw",
            "role": "engineer",
            "is_active": True,
        },
    )
    well = await _create(
        api,
        admin,
        "/wells",
        {
            "name": "SPEC-1",
            "field": "Troll",
            "country": "Norway",
            "type": "producer",
            "status": "shut-in",
            "spud_date": "2019-03-01T00:00:00Z",
            "completion_date": "2019-07-15T00:00:00Z",
            "measured_depth": 3500.0,
            "true_vertical_depth": 3200.0,
        },
    )
    assert well["location"] is None and well["consequence_level"] == 3  # derived from type
    return user, well


async def _create_strings_and_annulus(api: Api, admin: dict[str, str], w: int) -> dict:
    """Casing, cement, tubing, the annulus between them and its critical point."""
    casing = await _create(
        api,
        admin,
        f"/wells/{w}/casing-strings",
        {
            "well_id": w,
            "name": "9 5/8 production",
            "outer_diameter_in": 9.625,
            "inner_diameter_in": 8.681,
            "grade": "P110",
            "top_md": 0.0,
            "bottom_md": 3400.0,
            "burst_limit_bar": 548.0,
            "collapse_limit_bar": 330.0,
        },
    )
    assert casing["casing_type"] is None
    await _create(
        api,
        admin,
        f"/wells/{w}/cement-intervals",
        {
            "well_id": w,
            "casing_id": casing["id"],
            "top_md": 2500.0,
            "bottom_md": 3400.0,
            "compressive_strength_mpa": 24.0,
            "quality_flag": "uncertain",
        },
    )
    tubing = await _create(
        api,
        admin,
        f"/wells/{w}/tubing-strings",
        {
            "well_id": w,
            "name": "4 1/2 tubing",
            "outer_diameter_in": 4.5,
            "inner_diameter_in": 3.958,
            "top_md": 0.0,
            "bottom_md": 3300.0,
            "grade": "13Cr80",
        },
    )
    annulus = await _create(
        api,
        admin,
        f"/wells/{w}/annuli",
        {
            "well_id": w,
            "name": "A",
            "inner_tubing_string_id": tubing["id"],
            "outer_casing_string_id": casing["id"],
            "fluid_type": "brine",
            "fluid_gradient_bar_per_m": 0.105,
            "safety_factor": 0.9,
        },
    )
    point = await _create(
        api,
        admin,
        f"/annuli/{annulus['id']}/critical-points",
        {
            "annulus_id": annulus["id"],
            "label": "packer",
            "tvd_m": 3000.0,
            "pressure_limit_bar": 600.0,
        },
    )
    assert point["depth_md"] == 3000.0 and point["point_type"] is None  # depth from tvd_m
    return annulus


async def _create_barrier_and_test(api: Api, admin: dict[str, str], w: int) -> dict:
    """An envelope, an element in it and an inconclusive test of the element."""
    envelope = await _create(
        api,
        admin,
        f"/wells/{w}/barrier-envelopes",
        {"well_id": w, "type": "primary", "description": "tubing, packer, SSSV"},
    )
    assert envelope["name"] == "Primary envelope"
    element = await _create(
        api,
        admin,
        f"/barrier-envelopes/{envelope['id']}/barrier-elements",
        {
            "well_id": w,
            "envelope_id": envelope["id"],
            "name": "SSSV",
            "element_type": "sssv",
            "depth_md": 400.0,
            "status": "ok",
        },
    )
    await _create(
        api,
        admin,
        f"/barrier-elements/{element['id']}/tests",
        {
            "barrier_element_id": element["id"],
            "test_type": "leak-rate",
            "test_date": "2026-11-01T08:00:00Z",
            "result": "inconclusive",
            "pressure_applied_bar": 200.0,
            "leak_rate_unit": "m3/min",
            "comments": "gauge drifted",
        },
    )
    after = (
        await api.client.get(f"/api/v1/barrier-elements/{element['id']}", headers=admin)
    ).json()
    assert after["status"] == "ok", "an inconclusive test keeps the element's status"
    return element


async def _create_task_and_risk_matrix(
    api: Api, admin: dict[str, str], w: int, annulus: dict, element: dict
) -> None:
    await _create(
        api,
        admin,
        "/tasks",
        {
            "well_id": w,
            "annulus_id": annulus["id"],
            "barrier_element_id": element["id"],
            "title": "Retest SSSV",
            "description": "inconclusive leak-rate test",
            "priority": "high",
            "due_date": "2026-12-01T00:00:00Z",
            "status": "open",
            "auto_generated": False,
            "trigger_type": "manual",
        },
    )
    cells = [
        {"probability_level": p, "consequence_level": c, "category": cat.value}
        for p, c, cat in DEFAULT_RISK_MATRIX.rows()
    ]
    r = await api.client.put("/api/v1/risk-matrix", json={"cells": cells}, headers=admin)
    assert r.status_code == 200 and r.json()["cells"] == cells


async def test_every_entity_is_created_with_exactly_the_specification_fields(
    api: Api,
    users: Users,
) -> None:
    """Each body in the steps below holds the specification's fields of its entity and
    nothing else (the ids the server makes left out; a user's password, not its hash; the
    annulus's inner and outer string as their typed ids). Each is accepted, and reads back
    as sent (_create)."""
    admin = users.headers["admin"]
    user, well = await _create_user_and_well(api, admin)
    w = well["id"]
    annulus = await _create_strings_and_annulus(api, admin, w)
    element = await _create_barrier_and_test(api, admin, w)
    await _create_task_and_risk_matrix(api, admin, w, annulus, element)
    assert user["role"] == "engineer"


async def test_fluid_type_gives_the_gradient_and_other_needs_one(
    api: Api,
    users: Users,
) -> None:
    admin = users.headers["admin"]
    ids = await build_well(api.client, admin, name="FLUID-1")
    url = f"/api/v1/wells/{ids['well']}/annuli"
    r = await api.client.post(url, json={"name": "B", "fluid_type": "mud"}, headers=admin)
    assert r.status_code == 201 and r.json()["fluid_gradient_bar_per_m"] == 0.14
    r = await api.client.post(url, json={"name": "C"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "fluid_gradient_bar_per_m"
    r = await api.client.post(
        url, json={"name": "C", "well_id": ids["well"] + 1000, "fluid_type": "gas"}, headers=admin
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "well_id"
