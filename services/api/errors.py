"""Domain errors and the one place that maps every error to an HTTP answer.

Every error body has the same shape, so a client can show the engineer which field was
wrong and why::

    {"detail": "top_md: must be less than bottom_md", "errors": [{"field": "top_md",
     "reason": "must be less than bottom_md (3000.0)", "code": "invalid"}]}

Bad input is never a 500: request validation, our own checks and the database's
constraints (unique, check, foreign key) all end up here.
"""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


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
# shared/models.py, so they are stable.
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
    "probability_range": ("probability", "must be between 1 and 5"),
    "consequence_range": ("consequence", "must be between 1 and 5"),
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
        # Data errors (a value PostgreSQL cannot store) are the client's; anything else
        # (connection lost) is ours and must say so with a 503, not pretend to be input.
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if sqlstate.startswith("22"):
            return JSONResponse(
                {"detail": f"a value cannot be stored: {exc.orig}", "errors": []},
                status_code=422,
            )
        log.exception("database error")
        return JSONResponse({"detail": "database unavailable", "errors": []}, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail), "errors": []},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


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
