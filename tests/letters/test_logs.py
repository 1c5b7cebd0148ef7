"""An unexpected error answers 500 and logs one safe line: never the values of the request."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


async def test_unexpected_error_logs_no_personal_data(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = create_app(settings)

    @app.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("INSERT ... ('Мария Петрова', 'maria@example.org')")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    with caplog.at_level(logging.DEBUG):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/api/v1/boom")
    await app.state.engine.dispose()
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "unexpected RuntimeError" in caplog.text
    assert "maria" not in caplog.text
    assert "Петрова" not in caplog.text
