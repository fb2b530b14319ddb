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
# The ingest service's refusals by rules JSON Schema cannot say (shared/domain/readings.py):
# a tag or annulus that names no row, a tag and an annulus_id that disagree, one reading
# twice in a push, a time in the future (of the server's clock), and a CSV body (a string
# to JSON Schema) whose header lacks the required columns.
INGEST_DOMAIN_CODES = {
    "unknown_tag",
    "unknown_annulus",
    "conflicting_annulus",
    "duplicate",
    "future_timestamp",
    "malformed_csv",
}
# The login answers 400/422 for credentials it refuses, whatever their shape.
TOKEN_PATHS = ("/api/v1/auth/token",)


def _errors(response: Any) -> list[dict[str, Any]]:
    """The errors of an answer: the API's and a refused ingest request's ``errors``, or
    every error of every rejected reading of an ingest push (202/422 with ``rejected``)."""
    try:
        body = response.json()
    except Exception:
        return []
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return errors
    rejected = body.get("rejected")
    if isinstance(rejected, list):
        return [e for r in rejected if isinstance(r, dict) for e in r.get("errors") or []]
    return []


def _every_reading_refused(response: Any) -> bool:
    if response.status_code != 422:
        return False
    try:
        body = response.json()
    except Exception:
        return False
    return (
        isinstance(body, dict)
        and body.get("accepted") == 0
        and isinstance(body.get("rejected"), list)
        and bool(body["rejected"])
    )


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
    if case.operation.path.startswith("/ingest/") and _every_reading_refused(response):
        # Not all-or-nothing by contract (README, "Push a reading"): each reading is
        # judged by the rules of shared/domain/readings.py and a push none of whose
        # readings passed answers 422 listing each with its field and reason. Those rules
        # (units, quality words, PI digital states, clock skew, known tags) are tested
        # there; what this check still holds ingest to is every refusal of the request
        # itself.
        return None
    if (
        case.operation.path.startswith("/ingest/")
        and status in (400, 422)
        and errors
        and all(e.get("code") in INGEST_DOMAIN_CODES for e in errors)
    ):
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
