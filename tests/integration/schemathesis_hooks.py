"""Schemathesis hooks of tests/integration/test_openapi_conformance.py (SCHEMATHESIS_HOOKS).

One check replaces schemathesis' ``positive_data_acceptance``. That one fails any
schema-valid request the server refuses; but WIMS refuses some schema-valid requests on
purpose, by rules JSON Schema cannot say (a depth beyond the well's measured depth, ``from``
after ``to``, an admin deleting themselves, an id that names no row): those answer a 422
whose every error has the code of a domain rule (services/api/errors.py: ``invalid``,
``conflict``, ``not_found``). This check lets exactly those through and fails every other
refusal of a schema-valid request: a request-validation error (pydantic's codes:
``int_type``, ``less_than_equal``, ``nul_character``...) or a value the database could not
hold (``unstorable``) means the OpenAPI promised something the server does not keep.
"""

from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

# What a schema-valid request may be answered besides 422 (schemathesis' own default for
# positive_data_acceptance, config/_checks.py of the pinned version).
ACCEPTED = {401, 403, 404, 409, 429}
DOMAIN_RULE_CODES = {"invalid", "conflict", "not_found"}
# The login answers 400/422 for credentials it refuses, whatever their shape.
TOKEN_PATHS = ("/api/v1/auth/token",)


def _errors(response: Any) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except Exception:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else []


@schemathesis.check
def schema_valid_refused_only_by_domain_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or is_unexpected_http_status_case(case):
        return None
    status = response.status_code
    if status < 400 or status in ACCEPTED or status >= 500:
        return None  # server errors are not_a_server_error's to report
    if case.operation.path in TOKEN_PATHS and status in (400, 422):
        return None
    errors = _errors(response)
    if status == 422 and errors and all(e.get("code") in DOMAIN_RULE_CODES for e in errors):
        return None
    # schemathesis' own failure (ST202): a baseline knows it by operation and status, not by
    # where this file lies on the machine that recorded it.
    raise RejectedPositiveData(
        operation=case.operation.label,
        message=f"Schema-valid request refused by something other than a domain rule "
        f"(a 422 whose errors all carry {sorted(DOMAIN_RULE_CODES)})",
        status_code=status,
        allowed_statuses=[*map(str, sorted(ACCEPTED)), "422 (domain rules)"],
    )
