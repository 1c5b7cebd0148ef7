"""Request body limits (app.body_limit): every route has one, counted while the body is read,
chunked bodies included; a Content-Length over it is refused before a byte of the body; and an
anonymous request to a staff route is refused before its body is read at all (app.staff.gate)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from app import body_limit
from app.config import Settings
from app.main import create_app
from app.staff import sessions
from app.staff.models import Role
from app.staff.web import SESSION_COOKIE
from tests.factories import create_api_token, create_staff
from tests.live_server import serving

MB = 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """The process's resident memory now, in bytes (the server runs in this process)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as base_url:
        yield base_url


@dataclass
class Sent:
    status: int
    body: bytes
    bytes_sent: int  # of the body, when the answer came
    rss_growth: int  # the most the process grew while sending


async def send_raw(
    base_url: str,
    path: str,
    *,
    headers: dict[str, str],
    body_size: int = 0,
    chunk: int = 256 * 1024,
    chunked: bool = False,
) -> Sent:
    """A request over a plain socket that sends its body (zeros, made as it goes) only while no
    answer has come: the answer's status, and how much of the body was sent by then."""
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    writer.write((head + "\r\n").encode())
    answer = asyncio.ensure_future(_read_answer(reader))
    baseline, peak, sent = rss(), 0, 0
    data = b"\0" * chunk
    try:
        while sent < body_size and not answer.done():
            piece = data[: min(chunk, body_size - sent)]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            await writer.drain()
            sent += len(piece)
            peak = max(peak, rss() - baseline)
            await asyncio.sleep(0)
        if chunked and sent >= body_size and not answer.done():
            writer.write(b"0\r\n\r\n")
    except ConnectionError:
        pass  # the server answered and closed the connection while we were still sending
    try:
        status, body = await asyncio.wait_for(answer, 30)
    finally:
        writer.close()
    return Sent(status, body, sent, peak)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    assert status, head
    length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    body = await reader.readexactly(int(length.group(1))) if length else await reader.read()
    return int(status.group(1)), body


async def test_a_chunked_body_over_the_limit_is_413(live: str) -> None:
    # The citizen's API answered 400 to this (the old limit raised inside FastAPI's body reading).
    over = body_limit.DEFAULT + 1
    async with httpx.AsyncClient(base_url=live) as client:

        async def body() -> AsyncIterator[bytes]:
            yield b'{"region_code": "' + b"a" * (over - 17)

        response = await client.post(
            "/api/v1/campaigns/hospital/submissions",
            content=body(),
            headers={"content-type": "application/json"},
        )
    assert "content-length" not in response.request.headers  # sent chunked
    assert response.status_code == 413
    assert response.json() == {"error": "http_error", "message": "Слишком большой запрос."}


async def test_a_chunked_form_over_the_limit_is_413_on_the_submit_page(live: str) -> None:
    sent = await send_raw(
        live,
        "/campaigns/hospital/RU-TVE/submit",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body_size=body_limit.DEFAULT + 1,
        chunk=4096,
        chunked=True,
    )
    assert sent.status == 413
    assert "Слишком большой запрос." in sent.body.decode()


async def test_a_content_length_over_the_limit_is_refused_before_the_body(live: str) -> None:
    for path in ("/api/v1/campaigns/hospital/submissions", "/api/v1/staff/campaigns"):
        sent = await send_raw(
            live,
            path,
            headers={"Content-Type": "application/json", "Content-Length": str(100 * MB)},
            body_size=100 * MB,
        )
        assert sent.status == 413
        assert json.loads(sent.body)["message"] == "Слишком большой запрос."
        assert sent.bytes_sent < 16 * MB  # the answer came long before the body was sent


async def test_an_anonymous_100_mb_body_to_the_staff_api_is_not_read(live: str) -> None:
    # It used to be read whole before the 401: the process grew from 162 MB to 532 MB.
    sent = await send_raw(
        live,
        "/api/v1/staff/campaigns",
        headers={"Content-Type": "application/json"},
        body_size=100 * MB,
        chunked=True,
    )
    assert sent.status == 401
    assert json.loads(sent.body) == {"error": "unauthorized", "message": "Войдите, пожалуйста."}
    assert sent.bytes_sent < 16 * MB
    assert sent.rss_growth < 8 * MB


# --- every route -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    module: str  # the endpoint's
    reads_body: bool  # a body parameter, or the plain submit route (which reads its form)

    @property
    def limit(self) -> int:
        return body_limit.limit_for(_fill(self.path))


def endpoints(app: FastAPI) -> list[Endpoint]:
    found: list[Endpoint] = []
    for route in iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", None)
        if not methods or path is None:
            continue  # mounts: static files, which answer GET and HEAD only
        original = route.original_route
        reads = (
            getattr(route, "body_field", None) is not None
            if isinstance(original, APIRoute)
            else path == "/campaigns/{slug}/{code}/submit"
        )
        module: str = route.endpoint.__module__
        found.extend(Endpoint(method, path, module, reads) for method in sorted(methods - {"HEAD"}))
    return found


def test_the_larger_limit_is_the_campaign_texts_and_theirs_only() -> None:
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://"))
    found = endpoints(app)
    assert len(found) > 90
    for endpoint in found:
        if endpoint.module.startswith("app.campaigns.") and endpoint.method != "GET":
            assert endpoint.limit == body_limit.TEXTS, endpoint
        elif not endpoint.module.startswith("app.campaigns."):
            assert endpoint.limit == body_limit.DEFAULT, endpoint
    assert body_limit.limit_for("/api/v1/staff/campaigns") == body_limit.TEXTS
    assert body_limit.limit_for("/api/v1/staff/members") == body_limit.DEFAULT


# Path parameters that pass their checks, so that the request goes as far as its body.
SAMPLES = {"slug": "hospital", "code": "RU-TVE", "decision": "release", "fmt": "csv"}


def _fill(path: str) -> str:
    return re.sub(r"\{([^}:]+)[^}]*\}", lambda m: SAMPLES.get(m.group(1), "1"), path)


async def test_every_route_refuses_a_body_over_its_limit(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """Over HTTP, each route's limit is the one declared: a Content-Length over it is 413 on every
    route; a chunked body is counted wherever it is read (logged in, so that the staff routes
    read it too): 413 past the limit, never at it."""
    staff = await create_staff(session, Role.admin, Role.editor, Role.lawyer, Role.analyst)
    token = await create_api_token(session, staff)
    cookie = await sessions.start_session(session, staff=staff, settings=settings)
    await session.commit()
    logged_in = {"authorization": f"Bearer {token}", "cookie": f"{SESSION_COOKIE}={cookie}"}
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://"))
    checked = 0
    for endpoint in endpoints(app):
        if endpoint.method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        path = _fill(endpoint.path)
        over = await client.request(endpoint.method, path, content=b"a" * (endpoint.limit + 1))
        assert over.status_code == 413, endpoint
        if path.startswith("/api/"):
            assert over.json()["error"] == "http_error"

        async def chunks(size: int) -> AsyncIterator[bytes]:
            for start in range(0, size, 8192):
                yield b"a" * min(8192, size - start)

        for size in (endpoint.limit, endpoint.limit + 1):
            response = await client.request(
                endpoint.method,
                path,
                content=chunks(size),
                headers={**logged_in, "content-type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code < 500, (endpoint, size, response.text[:300])
            if size <= endpoint.limit:
                assert response.status_code != 413, endpoint
            elif endpoint.reads_body:  # (others may read it for the CSRF token: 413 too)
                assert response.status_code == 413, endpoint
        checked += 1
    assert checked > 40
