"""What the OpenAPI document declares, so that clients generated from it know every answer: the
error responses with their body, the security schemes, the parameters' limits, the media types.
(tests/test_openapi_fuzz.py checks the running app against it.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from app.main import create_app
from app.openapi import ErrorOut

ERROR = "#/components/schemas/ErrorOut"
BEARER: dict[str, list[str]] = {"apiToken": []}
COOKIE: dict[str, list[str]] = {"staffSession": []}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://"))
    openapi: dict[str, Any] = app.openapi()
    return openapi


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def _refs(response: dict[str, Any]) -> set[str]:
    return {content["schema"].get("$ref", "") for content in response.get("content", {}).values()}


def test_every_error_response_has_the_error_body(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["ErrorOut"]["required"] == ["error", "message"]
    for method, path, operation in operations(document):
        errors = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
        assert 503 in errors, (method, path)  # every operation reads the database
        for status, response in errors.items():
            if path == "/healthz":
                continue
            assert _refs(response) == {ERROR}, (method, path, status)
        assert "HTTPValidationError" not in str(operation), (method, path)


def test_each_operation_declares_the_errors_that_apply(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        declared = {int(s) for s in operation["responses"]}
        parameters = operation.get("parameters", [])
        body = "requestBody" in operation
        if path.startswith("/api/v1/staff"):
            assert 401 in declared, (method, path)
        if method in ("POST", "PUT", "PATCH", "DELETE") and path.startswith("/api/v1/staff"):
            assert 403 in declared, (method, path)  # a role, or the cookie's CSRF token
        if any(p["in"] == "path" for p in parameters):
            assert 404 in declared, (method, path)
        if body:
            assert {400, 413, 422} <= declared, (method, path)
        if parameters or body:
            assert 422 in declared, (method, path)
    submissions = document["paths"]["/api/v1/campaigns/{slug}/submissions"]["post"]
    assert {"409", "410", "429"} <= set(submissions["responses"])
    confirmations = document["paths"]["/api/v1/confirmations"]["post"]
    assert {"409", "410", "429"} <= set(confirmations["responses"])
    assert "Retry-After" in confirmations["responses"]["429"]["headers"]


def test_the_error_body_is_what_the_app_sends() -> None:
    # As app.main renders an error under /api/ (tests/test_openapi_fuzz.py: every answer).
    sent = {"error": "invalid_input", "message": "x", "details": [{"field": "a", "message": "y"}]}
    assert ErrorOut.model_validate(sent).model_dump() == sent


def test_the_staff_operations_declare_their_security(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiToken"]["type"] == "http"
    assert schemes["apiToken"]["scheme"].lower() == "bearer"
    assert schemes["staffSession"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "appeals_staff",
        "description": schemes["staffSession"]["description"],
    }
    for method, path, operation in operations(document):
        if path.startswith("/api/v1/staff"):
            assert operation["security"] == [BEARER, COOKIE], (method, path)
        else:
            assert "security" not in operation, (method, path)


def test_every_string_parameter_is_bounded(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            if "$ref" in schema:  # an enumeration
                continue
            for variant in schema.get("anyOf", [schema]):
                if variant.get("type") == "string":
                    where = (method, path, parameter["name"])
                    pattern = variant.get("pattern") or schema.get("pattern")
                    words = re.fullmatch(r"\^\([a-z|]+\)\$", pattern or "")
                    assert "maxLength" in variant or words, where  # (words: bounded already)
                    assert pattern or "enum" in variant, where
                elif variant.get("type") == "integer":
                    assert {"minimum", "maximum"} <= set(variant), (method, path)


def test_exports_declare_their_media_types(document: dict[str, Any]) -> None:
    export = document["paths"]["/api/v1/staff/stats/export"]["get"]["responses"]["200"]
    assert set(export["content"]) == {
        "text/csv; charset=utf-8",
        "application/json",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    rows = export["content"]["application/json"]["schema"]["items"]
    assert rows["properties"]["total"] == {"type": "integer", "minimum": 0}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]
    assert set(metrics["content"]) == {"text/plain; version=0.0.4; charset=utf-8"}


def test_consent_accepts_true_only(document: dict[str, Any]) -> None:
    consent = document["components"]["schemas"]["SubmissionIn"]["properties"]["consent"]
    assert consent["const"] is True
    assert "consent" in document["components"]["schemas"]["SubmissionIn"]["required"]
