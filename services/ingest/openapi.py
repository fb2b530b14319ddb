"""What ingest's /openapi.json says about its two push routes: bodies, bounds, every status
code a route answers and the body and headers of each.

The routes read the raw request (a 100,000-reading JSON array or a CSV stream is parsed by
services/ingest/processing.py, not by FastAPI), so FastAPI cannot derive any of this; it is
written here to match what the code does: shared/domain/readings.py for what one reading
may hold, processing.py for the answers. A schema fuzzer (schemathesis) holds the two to it.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.infrastructure.settings import Settings

BIGINT_MAX = 2**63 - 1
_NUMBER_OR_STATE: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {
            "type": "string",
            "description": "a number as text, or a PI digital state (Bad Input, I/O Timeout, ...)",
        },
        {"type": "object", "description": 'a PI digital state: {"Name": "Bad Input", ...}'},
        {"type": "null"},
    ]
}
READING: dict[str, Any] = {
    "type": "object",
    "description": "One reading. Fields not listed are ignored; null and the empty string "
    "mean absent. Each record is judged alone: a bad one is listed in `rejected` with the "
    "field and the reason, the others are accepted.",
    "properties": {
        "annulus_id": {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
                {"type": "string", "pattern": "^\\s*[1-9][0-9]{0,17}\\s*$"},
                {"type": "null"},
            ],
            "description": "the annulus (or give `tag`); an unknown one is rejected",
        },
        "tag": {
            "type": ["string", "null"],
            "description": "a SCADA tag mapped to an annulus (POST /api/v1/scada-tags)",
        },
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with Z or an offset; at most 5 minutes ahead of now",
        },
        "pressure": {
            **_NUMBER_OR_STATE,
            "description": "gauge pressure; required unless quality is bad",
        },
        "pressure_unit": {
            "type": ["string", "null"],
            "description": "bar (default), psi, kPa, MPa (gauge); absolute units are refused",
        },
        "temperature": _NUMBER_OR_STATE,
        "temperature_unit": {"type": ["string", "null"], "description": "degC (default) or degF"},
        "quality": {
            "anyOf": [
                {"type": "string"},
                {"type": "integer", "description": "an OPC UA status code"},
                {"type": "boolean", "description": "PI's Good flag"},
                {"type": "object", "description": "OPC UA status or PI flags"},
                {"type": "null"},
            ],
            "description": "good (default), uncertain, bad, or a historian's equivalent",
        },
    },
    "required": ["timestamp"],
    "allOf": [
        {
            "anyOf": [
                {
                    "required": ["annulus_id"],
                    "properties": {"annulus_id": {"type": ["integer", "string"]}},
                },
                {"required": ["tag"], "properties": {"tag": {"type": "string", "minLength": 1}}},
            ],
            "description": "annulus_id or tag, not null",
        },
        {
            "anyOf": [
                {
                    "required": ["pressure"],
                    "properties": {"pressure": {"type": ["number", "string", "object"]}},
                },
                {"required": ["quality"], "properties": {"quality": {"const": "bad"}}},
            ],
            "description": "a pressure, unless the reading is bad",
        },
    ],
}
_FIELD_ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "field": {"type": "string"},
        "reason": {"type": "string"},
        "code": {"type": "string"},
    },
    "required": ["field", "reason", "code"],
}
ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": _FIELD_ERROR, "minItems": 1},
        "accepted_before_failure": {
            "type": "integer",
            "minimum": 0,
            "description": "CSV: readings of earlier chunks, already stored",
        },
    },
    "required": ["detail", "errors"],
}


def _answer(csv: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "accepted": {"type": "integer", "minimum": 0},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "errors": {"type": "array", "items": _FIELD_ERROR, "minItems": 1},
                },
                "required": ["index", "errors"],
            },
        },
    }
    required = ["accepted", "rejected"]
    if csv:
        properties["rejected_count"] = {"type": "integer", "minimum": 0}
        properties["rejected_truncated"] = {"type": "boolean"}
        required += ["rejected_count", "rejected_truncated"]
    return {"type": "object", "properties": properties, "required": required}


def _json(schema: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = {
            name: {"schema": {"type": kind}, "required": True} for name, kind in headers.items()
        }
    return response


def responses(csv: bool) -> dict[int | str, dict[str, Any]]:
    answer = _answer(csv)
    return {
        202: _json(answer, "at least one reading accepted (Kafka acknowledged every one)"),
        400: _json(ERROR_BODY, "not JSON / not CSV (or a CSV header or line refused)"),
        401: _json(
            ERROR_BODY,
            "missing, wrong or revoked credentials",
            **{"WWW-Authenticate": "string"},
        ),
        403: _json(ERROR_BODY, "the user's role may not push (viewer)"),
        413: _json(ERROR_BODY, "body or record count over the limit"),
        415: _json(ERROR_BODY, "content type not accepted"),
        422: _json(
            {"anyOf": [answer, ERROR_BODY]},
            "no reading accepted (each rejection listed), or a body that is not an array / "
            "holds no reading",
        ),
        503: _json(
            ERROR_BODY,
            "Kafka or the database unavailable: push the same body again after Retry-After seconds",
            **{"Retry-After": "integer"},
        ),
    }


def request_body(csv: bool, settings: Settings) -> dict[str, Any]:
    if csv:
        content: dict[str, Any] = {
            "text/csv": {
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "description": "a header row naming the reading fields, then one row "
                    "per reading (UTF-8, lines of at most 256 KiB, at most "
                    f"{settings.ingest_csv_max_columns} columns)",
                }
            }
        }
    else:
        content = {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": READING,
                    "minItems": 1,
                    "maxItems": settings.ingest_max_records,
                }
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one reading (JSON) per line"}
            },
        }
    return {"required": True, "content": content}


SECURITY = [{"ApiKey": []}, {"Bearer": []}]
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


def route_extra(csv: bool, settings: Settings) -> dict[str, Any]:
    return {"requestBody": request_body(csv, settings), "security": SECURITY}


def document(app: FastAPI, settings: Settings, prefix: str) -> None:
    """Add the security schemes the routes name to the generated document, and put the
    request bodies back as written: FastAPI's model of the document turns every number
    into a float, and 2**63 - 1 as a float is 2**63, past a BIGINT."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            for path, csv in ((f"{prefix}/readings", False), (f"{prefix}/readings/csv", True)):
                schema["paths"][path]["post"]["requestBody"] = request_body(csv, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
