"""Ingest's /openapi.json tells the truth about its push routes (issue 17): a schema fuzzer
generates requests from it and judges the answers by it."""

import re
from typing import Any

import pytest

from services.ingest.app import create_app
from shared.infrastructure.settings import Settings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(ingest_max_records=12_345)).openapi()


@pytest.mark.parametrize("path", ["/ingest/v1/readings", "/ingest/v1/readings/csv"])
def test_every_answer_of_a_push_route_is_documented_with_its_body_and_headers(
    spec: dict[str, Any], path: str
) -> None:
    operation = spec["paths"][path]["post"]
    responses = operation["responses"]
    assert set(responses) == {"202", "400", "401", "403", "413", "415", "422", "503"}
    for status, response in responses.items():
        assert "application/json" in response["content"], status
    assert responses["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert operation["requestBody"]["required"] is True
    assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


def test_the_reading_schema_states_the_bounds_validation_enforces(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/ingest/v1/readings"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/x-ndjson"}
    array = body["application/json"]["schema"]
    assert (array["minItems"], array["maxItems"]) == (1, 12_345)
    reading = array["items"]
    assert reading["required"] == ["timestamp"]
    as_int = reading["properties"]["annulus_id"]["anyOf"][0]
    # Exactly the BIGINT range, as an integer (a float 2**63 - 1 would round up past it).
    assert as_int == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert type(as_int["maximum"]) is int
    assert {"type": "null"} in reading["properties"]["annulus_id"]["anyOf"]
    assert reading["properties"]["tag"]["type"] == ["string", "null"]
    csv = spec["paths"]["/ingest/v1/readings/csv"]["post"]["requestBody"]["content"]
    assert set(csv) == {"text/csv"}


@pytest.mark.parametrize("text", ["0", "00", "17", " 17 ", "1" * 18, "1" * 19, "-3", "1.5", ""])
def test_the_annulus_id_string_pattern_admits_what_validation_parses(
    spec: dict[str, Any], text: str
) -> None:
    from shared.domain.readings import _parse_annulus_id

    body = spec["paths"]["/ingest/v1/readings"]["post"]["requestBody"]["content"]
    as_text = body["application/json"]["schema"]["items"]["properties"]["annulus_id"]["anyOf"][1]
    admitted = re.search(as_text["pattern"], text) is not None
    assert admitted == isinstance(_parse_annulus_id(text), int)
