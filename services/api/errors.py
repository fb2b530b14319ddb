"""Domain errors and the one place that maps every error to an HTTP answer.

Every error body has the same shape, so a client can show the engineer which field was
wrong and why::

    {"detail": "top_md: must be less than bottom_md", "errors": [{"field": "top_md",
     "reason": "must be less than bottom_md (3000.0)", "code": "invalid"}]}

Bad input is never a 500: request validation, our own checks and the database's
constraints (unique, check, foreign key) and data errors (a value PostgreSQL or psycopg
cannot hold) all end up here as 4xx. A 503 means the database is unreachable, nothing
else. Nothing a client sent is logged: a database error is logged as the statement's kind
(its first SQL word) and its error code, never with the statement's parameters (a login's
parameters include a password hash) nor the request body.

The same module keeps the OpenAPI truthful about what these handlers answer on every
route (``document_errors``): 503 everywhere, 400 where a form body is parsed, and the
bounds of ``limit`` and ``offset``.
"""

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.infrastructure.retry import is_transient
from shared.infrastructure.settings import get_settings

log = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1


class FieldErrorOut(BaseModel):
    field: str
    reason: str
    code: str = "invalid"


class ErrorBody(BaseModel):
    """The body of every 4xx answer."""

    detail: str
    errors: list[FieldErrorOut] = []


class ApiError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, detail: str, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.reason = reason or detail

    def body(self) -> dict[str, Any]:
        errors = (
            [{"field": self.field, "reason": self.reason, "code": self.code}] if self.field else []
        )
        return {"detail": self.detail, "errors": errors}


class FieldInvalid(ApiError):
    """A value that is well-formed but wrong for the well (geometry, ranges, references)."""

    status_code = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field, reason)


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field, reason)


# Database constraint name -> (status, field, reason). Names follow the naming convention in
# shared/persistence/models.py, so they are stable.
_CHECKS: dict[str, tuple[str, str]] = {
    "md_order": ("top_md", "must be less than bottom_md"),
    "diameter_order": ("inner_diameter_in", "must be less than outer_diameter_in"),
    "measured_depth_positive": ("measured_depth", "must be greater than 0"),
    "consequence_level_range": ("consequence_level", "must be between 1 and 5"),
    "safety_factor_range": ("safety_factor", "must be in (0, 1]"),
    "gradient_non_negative": ("fluid_gradient_bar_per_m", "must be >= 0"),
    "one_inner_string": ("inner_tubing_string_id", "set only one of the two inner string ids"),
    "depth_non_negative": ("depth_md", "depths must be >= 0"),
    "limit_positive": ("pressure_limit_bar", "must be greater than 0"),
    "probability_range": ("probability_level", "must be between 1 and 5"),
    "consequence_range": ("consequence_level", "must be between 1 and 5"),
}
_KEY_COLUMNS = re.compile(r"Key \((?P<cols>[a-z_, ]+)\)")


def _key_column(exc: IntegrityError, default: str) -> str:
    """The column a unique or foreign key error is about, from PostgreSQL's detail line
    ("Key (well_id, name)=(1, A) already exists."): the last column is the one the client
    chose (the others are the parent it was nested under)."""
    detail = getattr(getattr(exc.orig, "diag", None), "message_detail", None) or ""
    m = _KEY_COLUMNS.search(detail)
    return m.group("cols").split(",")[-1].strip() if m else default


def _integrity_error(exc: IntegrityError) -> tuple[int, dict[str, Any]]:
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate == "23505":  # unique_violation
        return 409, Conflict(_key_column(exc, "name"), "already exists").body()
    if sqlstate == "23503":  # foreign_key_violation
        field = _key_column(exc, "id")
        reason = "refers to a row that does not exist, or is still referenced by other rows"
        return 422, FieldInvalid(field, reason).body()
    if sqlstate == "23502":  # not_null_violation
        return 422, FieldInvalid(getattr(diag, "column_name", None) or "body", "is required").body()
    if sqlstate == "23514":  # check_violation
        suffix = next((k for k in _CHECKS if constraint.endswith(k)), None)
        field, reason = _CHECKS.get(suffix or "", ("body", f"violates {constraint}"))
        return 422, FieldInvalid(field, reason).body()
    return 422, ApiError("the change conflicts with the stored data").body()


def _field_of(loc: tuple[Any, ...]) -> str:
    # ("body", "top_md") -> "top_md"; ("query", "limit") -> "limit"; nested keeps its path.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field_of(tuple(e.get("loc", ()))),
                "reason": str(e.get("msg", "invalid")),
                "code": str(e.get("type", "invalid")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors) or "invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        status, body = _integrity_error(exc)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        kind, code = statement_kind(exc), error_code(exc)
        if is_data_error(exc):
            # The client's value, refused by PostgreSQL (22xxx: out of range, bad date) or
            # by psycopg before sending (a NUL in a text): bad input, a 422.
            field = await _offending_field(request, exc) or "body"
            reason = _data_error_reason(exc)
            # Its own code: the schema let through a value the database cannot hold, unlike
            # a domain rule's "invalid" (tests/integration/schemathesis_hooks.py tells them apart).
            errors = [{"field": field, "reason": reason, "code": "unstorable"}]
            return JSONResponse({"detail": f"{field}: {reason}", "errors": errors}, 422)
        if is_transient(exc):
            log.warning("database unavailable: %s statement failed with %s", kind, code)
            return JSONResponse(
                {"detail": "database unavailable: try again shortly", "errors": []},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        log.error(
            "database error on %s %s: %s statement failed with %s",
            request.method,
            _route_of(request),
            kind,
            code,
        )
        return JSONResponse({"detail": "internal error", "errors": []}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only; a path
            # with GET and POST routes must name both (RFC 9110, Allow).
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return JSONResponse(
            {"detail": str(exc.detail), "errors": []},
            status_code=exc.status_code,
            headers=headers or None,
        )

    document_errors(app)


# --- database errors, without what the client sent ----------------------------------------------

_NUL_MESSAGE = "NUL (0x00)"  # psycopg: "PostgreSQL text fields cannot contain NUL (0x00) bytes"


def statement_kind(exc: DBAPIError) -> str:
    """SELECT, INSERT, UPDATE...: the first word of the statement, never its text."""
    words = (exc.statement or "").split(None, 1)
    return words[0].upper() if words else "(no statement)"


def error_code(exc: DBAPIError) -> str:
    """The SQLSTATE when PostgreSQL answered, else psycopg's exception class."""
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or type(orig).__name__


def is_data_error(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate.startswith("22"):
        return True
    # psycopg refuses a value it cannot send (a NUL in a text, an int beyond numeric) with
    # a DataError of its own, before the server sees the statement: no SQLSTATE.
    return type(exc.orig).__name__ == "DataError" and not sqlstate


def _data_error_reason(exc: DBAPIError) -> str:
    if _NUL_MESSAGE in str(exc.orig):
        return "must not contain the NUL character (\\u0000)"
    # PostgreSQL's primary message names the problem ("bigint out of range"), not the value.
    primary = getattr(getattr(exc.orig, "diag", None), "message_primary", None)
    return f"cannot be stored: {primary or 'out of range'}"


def _holds_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def _beyond_bigint(value: Any) -> bool:
    text = str(value).strip()
    return text.lstrip("+-").isdigit() and abs(int(text)) > INT64_MAX


async def _offending_field(request: Request, exc: DBAPIError) -> str | None:
    """The request parameter or form field that holds the value the database refused.

    Bodies are validated by their schemas before any SQL runs (services/api/schemas.py), so
    what reaches the database unchecked is a path or query parameter, or a form field (the
    login form): the form is read back from the request, which keeps it once parsed."""
    looks_wrong: Callable[[Any], bool] = (
        _holds_nul if _NUL_MESSAGE in str(exc.orig) else _beyond_bigint
    )
    candidates: list[tuple[str, Any]] = [*request.path_params.items()]
    candidates += request.query_params.multi_items()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            candidates += (await request.form()).multi_items()
        except Exception:  # the body is gone or was never a form: no field to name
            pass
    return next((name for name, value in candidates if looks_wrong(value)), None)


def _route_of(request: Request) -> str:
    # The route template (/wells/{item_id}), not the path: no ids or values in the log.
    return getattr(request.scope.get("route"), "path", "unmatched")


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """The methods some route answers for this request's path, asked of the routes themselves
    (FastAPI nests included routers, so a walk over route paths would miss them)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]


# --- the OpenAPI says what the handlers answer ------------------------------------------------

_UNAVAILABLE = {"description": "the database is unreachable (an outage, not the request): retry"}
_UNPARSABLE = {"description": "the body cannot be parsed (not UTF-8 JSON, not a form)"}


def _bound(param: dict[str, Any], max_page_size: int) -> None:
    """Declares the bounds an integer parameter has without saying so: ``limit`` and
    ``offset`` of the page parameters (services/api/deps.py), and any other integer compared
    with a column, which PostgreSQL refuses beyond bigint (answered 422 naming it, above)."""
    schema = param.get("schema", {})
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") != "integer":
            continue
        if param.get("in") == "query" and param.get("name") == "limit":
            option.setdefault("maximum", max_page_size)  # measurements' own 10000 stays
        option.setdefault("maximum", INT64_MAX)
        option.setdefault("minimum", -INT64_MAX - 1)


def document_errors(app: FastAPI) -> None:
    """Completes the generated OpenAPI with the answers every route can give through the
    handlers above, which FastAPI cannot see: 503 on every /api route, 400 where a body is
    parsed, 422 wherever input is validated; and ``limit``'s maximum, which is a setting
    (WIMS_API_MAX_PAGE_SIZE), and every other integer parameter's, PostgreSQL's bigint."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        settings = getattr(app.state, "settings", None) or get_settings()
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                responses = op["responses"]
                if path.startswith("/api/"):
                    responses.setdefault("503", _UNAVAILABLE)
                content = op.get("requestBody", {}).get("content", {})
                if content:
                    responses.setdefault("400", _UNPARSABLE)
                for param in op.get("parameters", []):
                    _bound(param, settings.api_max_page_size)
                if (op.get("parameters") or content) and "422" not in responses:
                    responses["422"] = {
                        "description": ERROR_RESPONSES[422]["description"],
                        "content": {"application/json": {"schema": _ERROR_BODY_REF}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}


# Documented on every route, so a generated client knows the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
    403: {"model": ErrorBody, "description": "the user's role does not allow this"},
    422: {"model": ErrorBody, "description": "invalid input: names the field and the reason"},
}
ITEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: {"model": ErrorBody, "description": "no such item"},
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ITEM_RESPONSES,
    409: {"model": ErrorBody, "description": "conflicts with an existing item (unique name)"},
}
