"""Request schemas refuse what the database cannot hold, strictly, and the OpenAPI says so;
database errors map to 4xx / 503 / 500 without logging what the client sent. No database:
the app's OpenAPI is generated without its lifespan, and errors are raised by hand."""

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError

from services.api import schemas as s
from services.api.app import create_app
from services.api.errors import FieldInvalid, install_error_handlers
from services.api.processing.queries import parse_resolution
from services.api.processing.resources import RESOURCES
from shared.infrastructure.settings import Settings
from shared.persistence.models import User


def _request_models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo = list(s.In.__subclasses__())
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def _text_fields(model: type[BaseModel]) -> list[str]:
    names = []
    for name, prop in model.model_json_schema()["properties"].items():
        options = prop.get("anyOf", [prop])
        # A fixed value (a Literal: enum/const) refuses NUL like any value not in its set.
        free = [o for o in options if "enum" not in o and "const" not in o]
        if any(o.get("type") == "string" and "format" not in o for o in free):
            names.append(name)
    return names


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    settings = Settings(api_max_page_size=321)
    app = create_app(settings)
    app.state.settings = settings  # what the lifespan sets before the first request
    return app.openapi()


def test_every_text_field_of_every_body_refuses_nul_and_declares_it() -> None:
    checked = 0
    for model in _request_models():
        props = model.model_json_schema()["properties"]
        for name in _text_fields(model):
            options = props[name].get("anyOf", [props[name]])
            strings = [o for o in options if o.get("type") == "string"]
            assert all("\\x00" in o.get("pattern", "") for o in strings), (model, name)
            with pytest.raises(ValidationError) as info:
                model.model_validate({name: "ab\x00cdefgh"})  # fits every length bound
            errors = [e for e in info.value.errors() if e["loc"] == (name,)]
            assert errors, (model, name, info.value.errors())
            assert "NUL" in errors[0]["msg"] or errors[0]["type"] == "string_pattern_mismatch"
            checked += 1
    assert checked > 30  # names, notes, descriptions, tags, emails, passwords...


def test_update_schemas_offer_null_exactly_for_nullable_columns() -> None:
    pairs = [(r.update, r.model) for r in RESOURCES] + [(s.UserUpdate, User)]
    for update, model in pairs:
        props = update.model_json_schema()["properties"]
        for name, prop in props.items():
            column = model.__table__.columns.get(name)
            nullable = column.nullable if column is not None else False
            offers_null = {"type": "null"} in prop.get("anyOf", [])
            assert offers_null == nullable, (update.__name__, name)
            if not nullable:
                with pytest.raises(ValidationError):
                    update.model_validate({name: None})
                assert "default" not in prop, (update.__name__, name)


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (s.UserCreate, "is_active", 0),
        (s.UserUpdate, "is_active", "false"),
        (s.AnnulusCreate, "imposed_pressure", 1),
        (s.WellCreate, "consequence_level", "3"),
        (s.WellCreate, "consequence_level", 3.5),
        (s.WellCreate, "consequence_level", True),
        (s.WellCreate, "measured_depth", "3000"),
        (s.WellCreate, "measured_depth", True),
        (s.WellCreate, "spud_date", 0),
        (s.ScadaTagCreate, "annulus_id", "7"),
        (s.RiskCell, "probability", "2"),
    ],
)
def test_bodies_take_json_types_strictly(model: type[BaseModel], field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate({field: value})
    assert any(e["loc"] == (field,) for e in info.value.errors()), info.value.errors()


def test_a_json_integer_may_be_written_with_a_zero_fraction() -> None:
    # JSON Schema's integer: 3.0 is one (schemathesis sends it as a valid integer).
    assert s.WellUpdate.model_validate({"consequence_level": 3.0}).consequence_level == 3


def test_ids_and_integers_are_bounded_by_their_columns() -> None:
    for model in _request_models():
        for name, prop in model.model_json_schema()["properties"].items():
            for option in prop.get("anyOf", [prop]):
                if option.get("type") == "integer":
                    assert option.get("maximum", s.INT64_MAX + 1) <= s.INT32_MAX, (model, name)
    with pytest.raises(ValidationError):
        s.ScadaTagCreate.model_validate({"tag": "T", "annulus_id": 2**31})
    assert s.ScadaTagCreate.model_validate({"tag": "T", "annulus_id": 2**31 - 1})


def test_an_instant_beyond_python_years_is_refused() -> None:
    ok = s.WellUpdate.model_validate({"spud_date": "0001-01-01T00:00:00Z"})
    assert ok.spud_date is not None and ok.spud_date.year == 1
    with pytest.raises(ValidationError, match="year 1 to 9999"):
        s.WellUpdate.model_validate({"spud_date": "0001-01-01T00:00:00+01:00"})


@pytest.mark.parametrize("value", ["99999999999d", "999999999s", "10000d", "0s", "1w", "1.5h"])
def test_absurd_resolutions_are_refused(value: str) -> None:
    with pytest.raises(FieldInvalid) as info:
        parse_resolution(value)
    assert info.value.field == "resolution"


def test_the_largest_resolutions_are_widths() -> None:
    for value in ("99999999s", "999999m", "99999h", "9999d"):
        assert parse_resolution(value).total_seconds() > 0


# --- the OpenAPI ----------------------------------------------------------------------------------


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in openapi["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


def test_limit_and_offset_declare_their_maximum(openapi: dict[str, Any]) -> None:
    limits = offsets = 0
    for path, method, op in _operations(openapi):
        for param in op.get("parameters", []):
            if param["in"] == "query" and param["name"] == "limit":
                limits += 1
                own = 10_000 if path.endswith("/measurements") else 321
                assert param["schema"]["maximum"] == own, (method, path)
            if param["in"] == "query" and param["name"] == "offset":
                offsets += 1
                assert param["schema"]["maximum"] == s.INT64_MAX
    assert limits > 15 and offsets > 15


def test_every_api_operation_documents_503_and_its_errors(openapi: dict[str, Any]) -> None:
    for path, method, op in _operations(openapi):
        if not path.startswith("/api/"):
            continue
        codes = set(op["responses"])
        assert "503" in codes, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in codes, (method, path)
        if op.get("security") or path != "/api/v1/auth/token":
            assert {"401", "403"} <= codes or path == "/api/v1/auth/token", (method, path)
    login = openapi["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert {"400", "401", "422", "429", "503"} <= set(login)


def test_every_path_id_is_bounded(openapi: dict[str, Any]) -> None:
    for path, method, op in _operations(openapi):
        for param in op.get("parameters", []):
            if (param["in"] == "path" and param["name"] != "item_id") or "alerts" in path:
                continue
            if param["in"] == "path":
                assert param["schema"]["maximum"] <= s.INT64_MAX, (method, path)
                assert param["schema"]["minimum"] == 1, (method, path)


def test_integer_parameters_declare_their_column_bounds(openapi: dict[str, Any]) -> None:
    params = {p["name"]: p for p in openapi["paths"]["/api/v1/wells"]["get"]["parameters"]}
    (level,) = [
        o for o in params["consequence_level"]["schema"]["anyOf"] if o.get("type") == "integer"
    ]
    assert (level["minimum"], level["maximum"]) == (-(2**15), 2**15 - 1)  # smallint column
    params = {p["name"]: p for p in openapi["paths"]["/api/v1/alerts"]["get"]["parameters"]}
    (well,) = [o for o in params["well_id"]["schema"]["anyOf"] if o.get("type") == "integer"]
    assert well["maximum"] == s.INT64_MAX  # compared with a bigint column


def test_resolution_declares_its_pattern(openapi: dict[str, Any]) -> None:
    op = openapi["paths"]["/api/v1/annuli/{annulus_id}/measurements"]["get"]
    (resolution,) = [p for p in op["parameters"] if p["name"] == "resolution"]
    assert resolution["schema"]["pattern"].startswith("^(raw|")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/wells", "GET, POST"),
        ("PUT", "/api/v1/wells/1", "DELETE, GET, PATCH"),
        ("OPTIONS", "/api/v1/risk-matrix", "GET, PUT"),
        ("DELETE", "/api/v1/auth/token", "POST"),
    ],
)
async def test_a_405_allows_every_method_the_openapi_lists_for_the_path(
    openapi: dict[str, Any], method: str, path: str, allow: str
) -> None:
    app = create_app(Settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == allow
    template = path.replace("/1", "/{item_id}")
    documented = {m.upper() for m in openapi["paths"][template]}
    assert set(allow.split(", ")) == documented


# --- database errors ------------------------------------------------------------------------------

SECRET = "S3cr3t-Kangaroo-unit"


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class DataErrorNoState(_PgError):
    pass


DataErrorNoState.__name__ = "DataError"  # psycopg's client-side refusal, by class name


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom(q: str = "") -> None:
        raise exc

    @app.post("/boom")
    async def boom_post() -> None:
        raise exc

    return app


def _server_log(caplog: pytest.LogCaptureFixture) -> str:
    # The test's own HTTP client logs the URLs it calls; the server is everything else.
    formatter = logging.Formatter()  # with tracebacks, where a record carries one
    return "\n".join(formatter.format(r) for r in caplog.records if r.name != "httpx")


async def _call(app: FastAPI, method: str = "GET", **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, "/boom", **kw)


STATEMENT = "SELECT app_user.id FROM app_user WHERE app_user.email = %(email_1)s"
PARAMS = {"email_1": SECRET}


async def test_a_nul_refused_by_psycopg_is_a_422_naming_the_parameter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    orig = DataErrorNoState("PostgreSQL text fields cannot contain NUL (0x00) bytes", None)
    app = _app(DataError(STATEMENT, PARAMS, orig))
    with caplog.at_level(logging.DEBUG):
        r = await _call(app, params={"q": f"{SECRET}\x00"})
        form = await _call(app, "POST", data={"username": f"{SECRET}\x00", "password": "p"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "q"
    assert form.status_code == 422 and form.json()["errors"][0]["field"] == "username"
    assert SECRET not in _server_log(caplog)


async def test_an_outage_is_a_503_logged_without_parameters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    orig = _PgError(f"connection refused while sending {SECRET}", "08006")
    with caplog.at_level(logging.DEBUG):
        r = await _call(_app(OperationalError(STATEMENT, PARAMS, orig)))
    assert r.status_code == 503 and r.headers["retry-after"]
    assert "SELECT" in caplog.text and "08006" in caplog.text
    assert SECRET not in _server_log(caplog)


async def test_a_programming_error_is_a_500_not_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    orig = _PgError(f'column "{SECRET}" does not exist', "42703")
    with caplog.at_level(logging.DEBUG):
        r = await _call(_app(ProgrammingError(STATEMENT, PARAMS, orig)))
    assert r.status_code == 500
    assert "42703" in _server_log(caplog) and SECRET not in _server_log(caplog)
