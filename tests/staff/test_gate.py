"""The staff routes' gate (app.staff.gate): no credentials, no body read."""

from __future__ import annotations

from unittest.mock import ANY

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from app.config import Settings
from app.main import create_app
from app.staff.models import Role
from app.staff.web import SESSION_COOKIE
from tests.factories import create_api_token, create_staff


async def call(
    settings: Settings, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], int]:
    """The app called as a server calls it: the status, headers, and how often the body was read."""
    app = create_app(settings)
    reads = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b'{"slug": "x"}', "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        + [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    try:
        await app(scope, receive, send)
    finally:
        await app.state.engine.dispose()
    start = sent[0]
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, reads


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/staff/campaigns"),
        ("PUT", "/api/v1/staff/campaigns/1"),
        ("GET", "/api/v1/staff/me"),
        ("DELETE", "/api/v1/staff/tokens/1"),
        ("POST", "/api/v1/staff/nothing-here"),
    ],
)
async def test_the_staff_api_refuses_an_anonymous_request_unread(
    settings: Settings, method: str, path: str
) -> None:
    status, headers, reads = await call(settings, method, path)
    assert (status, reads) == (401, 0)
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path", "location"),
    [
        ("GET", "/staff/campaigns", "/staff/login?next=%2Fstaff%2Fcampaigns"),
        ("POST", "/staff/campaigns", "/staff/login"),
        ("POST", "/staff/texts/1/versions", "/staff/login"),
        ("GET", "/staff", "/staff/login?next=%2Fstaff"),
    ],
)
async def test_staff_pages_send_an_anonymous_request_to_the_login_page_unread(
    settings: Settings, method: str, path: str, location: str
) -> None:
    status, headers, reads = await call(settings, method, path)
    assert (status, headers["location"], reads) == (303, location, 0)


async def test_the_login_page_stays_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/staff/login")).status_code == 200
    response = await client.post("/staff/login", data={"email": "a@example.org", "password": "x"})
    assert response.status_code == 403  # the login form's own CSRF check, past the gate


async def test_credentials_pass_the_gate_and_are_checked_by_the_routes(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    staff = await create_staff(session, Role.editor)
    token = await create_api_token(session, staff)
    await session.commit()
    bogus = {"authorization": "Bearer apl_not-a-token"}
    response = await client.post("/api/v1/staff/campaigns", json={}, headers=bogus)
    assert response.status_code == 401
    assert response.json()["message"] != "Войдите, пожалуйста."  # the route's own answer
    # A bogus session cookie passes the gate too: the route reads the body, then finds no session.
    cookie = {"cookie": f"{SESSION_COOKIE}=nonsense"}
    assert await call(settings, "POST", "/api/v1/staff/campaigns", cookie) == (401, ANY, 1)
    status, headers, _ = await call(settings, "GET", "/staff/campaigns", cookie)
    assert (status, headers["location"]) == (303, "/staff/login?next=%2Fstaff%2Fcampaigns")
    response = await client.get(
        "/api/v1/staff/me", headers={"authorization": f"bearer {token}"}
    )  # the scheme in any case, as the routes take it
    assert response.status_code == 200
