"""An unexpected error is a plain 500 with every security header, logged without its message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends
from fastapi.responses import StreamingResponse
from starlette.types import Message

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


async def _refused_stream() -> AsyncIterator[bytes]:
    raise ConnectionRefusedError(111, "Connect call failed")
    yield b""  # (a generator)


async def _cut_stream() -> AsyncIterator[bytes]:
    yield b"day,letters\n"
    raise ConnectionRefusedError(111, "Connect call failed")


async def _refused_teardown() -> AsyncIterator[None]:
    yield
    raise ConnectionResetError(104, "reset")


@pytest.fixture
async def streaming(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.add_api_route("/api/v1/refused", lambda: StreamingResponse(_refused_stream()))
    app.add_api_route("/api/v1/cut", lambda: StreamingResponse(_cut_stream()))
    app.add_api_route(
        "/api/v1/teardown", lambda: {"ok": True}, dependencies=[Depends(_refused_teardown)]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.engine.dispose()


async def test_a_stream_that_meets_an_outage_before_its_first_chunk_is_a_whole_503(
    streaming: httpx.AsyncClient,
) -> None:
    response = await streaming.get("/api/v1/refused")
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert response.headers["retry-after"]


async def test_a_stream_cut_by_an_outage_after_its_first_chunk_is_cut_short(
    settings: Settings,
) -> None:
    # The status line and the first chunk are out: nothing can turn them into a 503. The
    # response stays incomplete (the server closes the connection); no second answer follows.
    app = create_app(settings)
    app.add_api_route("/api/v1/cut", lambda: StreamingResponse(_cut_stream()))
    sent: list[Message] = []

    requested = asyncio.Event()

    async def receive() -> Message:
        if not requested.is_set():
            requested.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/api/v1/cut", "raw_path": b"/api/v1/cut", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    await app.state.engine.dispose()
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"day,letters\n"
    assert sent[1].get("more_body") is True


async def test_an_outage_after_the_answer_leaves_the_answer_whole(
    streaming: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="appeals"):
        response = await streaming.get("/api/v1/teardown")
        again = await streaming.get("/api/v1/teardown")
    assert response.status_code == again.status_code == 200
    assert response.json() == {"ok": True}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "database unavailable (ConnectionResetError): answering 503 until it is back"
    ]
