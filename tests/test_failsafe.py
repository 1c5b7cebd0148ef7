"""An unexpected error is a plain 500 with every security header, logged without its message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.main import create_app

SECRET = "sender=Иван Петров, email=ivan@example.org"


async def _explode() -> None:
    raise ValueError(SECRET)


@pytest.fixture
async def exploding(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # Not the test environment: tracebacks must stay out of the log, as in production.
    app = create_app(settings.model_copy(update={"environment": "development"}))
    app.add_api_route("/api/v1/explode", _explode)
    app.add_api_route("/explode", _explode)
    transport = httpx.ASGITransport(app=app)  # raises if the exception escaped the app
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.engine.dispose()


async def test_api_error_is_json_500_without_details(
    exploding: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await exploding.get("/api/v1/explode")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "Internal error."}
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "unexpected ValueError at" in logged
    assert "tests/test_failsafe.py" in logged
    assert "Иван" not in logged
    assert "ivan@example.org" not in logged


async def test_page_error_is_a_page_in_the_visitors_language(exploding: httpx.AsyncClient) -> None:
    response = await exploding.get("/explode", headers={"Accept-Language": "en"})
    assert response.status_code == 500
    assert "text/html" in response.headers["content-type"]
    assert "Something went wrong" in response.text
    assert SECRET not in response.text
    assert response.headers["content-language"] == "en"
    assert response.headers["x-frame-options"] == "DENY"
