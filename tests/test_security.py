"""Every response forbids third-party loads, framing and referrers; the API explorer is local; what
secret links open is never cached, links in e-mails never come from the request, cookies are
Secure in production and no server header says what answers."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute, Route
from typer.testing import CliRunner

from app import cli
from app.config import Settings, get_settings
from app.main import create_app
from app.security import SECRET_PATHS
from tests.letters.conftest import Inbox, api_body, form, mail_sent, make_world

APPEALS = Path(sys.executable).with_name("appeals")


async def test_pages_and_api_carry_security_headers(client: httpx.AsyncClient) -> None:
    for path in ("/", "/api/v1/regions", "/nothing-here", "/static/app.css", "/api/v1/deputies/x"):
        response = await client.get(path)
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["x-frame-options"] == "DENY", path
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "strict-transport-security" not in response.headers


async def test_hsts_only_over_https(client: httpx.AsyncClient) -> None:
    response = await client.get("https://testserver/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_api_explorer_loads_nothing_from_other_sites(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    sources += re.findall(r"""url: *['"]([^'"]+)""", page.text)
    assert sources
    for source in sources:
        assert source.startswith("/"), source
        if source.endswith((".js", ".css")):
            assert (await client.get(source)).status_code == 200, source


# --- secret links ------------------------------------------------------------------------------


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    await box.start()
    yield box
    await box.close()


def _citizen_settings(settings: Settings, inbox: Inbox, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": inbox.port,
        "smtp_tls": "none",
        "limit_submit_per_address": "1000/minute",
        "limit_submit_per_net24": "1000/minute",
        "limit_submit_per_net16": "1000/minute",
        "limit_submit_per_email": "1000/minute",
        "limit_links_per_address": "1000/minute",
    }
    return settings.model_copy(update=values | changes)


@asynccontextmanager
async def _citizen(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client
    finally:
        await app.state.rate_limiter.aclose()
        await app.state.engine.dispose()


def _text(inbox: Inbox) -> str:
    body = inbox.messages[-1].get_body(("plain",))
    assert body is not None
    return str(body.get_content())


@pytest.mark.parametrize(
    ("public_url", "base"),
    [
        ("", "http://127.0.0.1:8000"),
        ("https://appeals.example.org/", "https://appeals.example.org"),
    ],
)
async def test_links_in_e_mails_never_come_from_the_host_header(
    settings: Settings,
    session: AsyncSession,
    inbox: Inbox,
    public_url: str,
    base: str,
) -> None:
    world = await make_world(session)
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    async with _citizen(_citizen_settings(settings, inbox, public_url=public_url)) as (app, client):
        page = await client.post(
            "/campaigns/hospital/RU-TVE/submit", data=form(world), headers=forged
        )
        assert page.status_code == 303
        api = await client.post(
            "/api/v1/campaigns/hospital/submissions",
            json=api_body(world, email="ivan@example.org"),
            headers=forged,
        )
        assert api.status_code == 202
        await mail_sent(app)
    assert len(inbox.messages) == 2
    for message in inbox.messages:
        body = message.get_body(("plain",))
        assert body is not None
        text = str(body.get_content())
        assert "evil.example" not in text
        assert f"{base}/confirm/" in text
        assert f"{base}/status/" in text


async def test_production_without_a_public_url_sends_no_links(
    settings: Settings, session: AsyncSession, inbox: Inbox
) -> None:
    world = await make_world(session)
    production = _citizen_settings(settings, inbox, environment="production")
    assert production.public_base_url is None
    async with _citizen(production) as (_app, client):
        response = await client.post("/api/v1/campaigns/hospital/submissions", json=api_body(world))
    assert response.status_code == 503
    assert "APPEALS_PUBLIC_URL" in response.json()["message"]


async def test_what_secret_links_open_is_never_stored_by_a_cache(
    settings: Settings, session: AsyncSession, inbox: Inbox
) -> None:
    world = await make_world(session)
    async with _citizen(_citizen_settings(settings, inbox)) as (app, client):
        for email in ("maria@example.org", "ivan@example.org"):
            submitted = await client.post(
                "/api/v1/campaigns/hospital/submissions", json=api_body(world, email=email)
            )
            assert submitted.status_code == 202
        await mail_sent(app)
        page_links, api_links = inbox.links(0), inbox.links(1)
        confirm, status = page_links["confirm"], page_links["status"]
        api_status = api_links["status"]
        answers = {
            "confirm_page": await client.get(f"/confirm/{confirm}"),
            "confirm_submit": await client.post(f"/confirm/{confirm}"),
            "status_page": await client.get(f"/status/{status}"),
            "status_cancel": await client.post(f"/status/{status}/cancel", data={"all": "yes"}),
            "status_erase": await client.post(f"/status/{status}/erase", data={"sure": "yes"}),
            "api_confirm": await client.post(
                "/api/v1/confirmations", json={"token": api_links["confirm"]}
            ),
            "api_status": await client.get(f"/api/v1/status/{api_status}"),
            "api_cancel": await client.post(f"/api/v1/status/{api_status}/cancel", json={}),
            "api_erase": await client.post(f"/api/v1/status/{api_status}/erase"),
            # Errors too: a used, an unknown or a malformed link.
            "used": await client.post(f"/confirm/{confirm}"),
            "unknown": await client.get("/api/v1/status/nothing-here"),
            "malformed": await client.get("/status/%20bad"),
        }
        ok = {200, 201, 303}
        assert {
            n: r.status_code for n, r in answers.items() if n in SECRET and r.status_code not in ok
        } == {}
        for name, response in answers.items():
            assert response.headers.get("cache-control") == "no-store", name
        # Every route that a link's token opens is under the paths marked no-store.
        routes = _routes(app.routes)
        assert {r.name for r in routes} >= SECRET
        for route in routes:
            if "{token}" in route.path or route.name in SECRET:
                assert route.path.startswith(SECRET_PATHS), route.path
        # Other pages keep their own caching rules.
        assert "cache-control" not in (await client.get("/regions")).headers


def _routes(routes: Sequence[BaseRoute]) -> list[Route]:
    """The app's routes, those of included routers too (FastAPI keeps them apart)."""
    found: list[Route] = []
    for route in routes:
        if isinstance(route, Route):
            found.append(route)
        elif (router := getattr(route, "original_router", None)) is not None:
            found.extend(_routes(router.routes))
    return found


SECRET = {
    "confirm_page",
    "confirm_submit",
    "status_page",
    "status_cancel",
    "status_erase",
    "api_confirm",
    "api_status",
    "api_cancel",
    "api_erase",
}


# --- cookies and headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "scheme", "secure"),
    [("production", "http", True), ("test", "http", False), ("test", "https", True)],
)
async def test_language_cookie_is_secure_in_production(
    settings: Settings, environment: str, scheme: str, secure: bool
) -> None:
    chosen = settings.model_copy(update={"environment": environment})
    app = create_app(chosen)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver") as client:
        switch = await client.get("/language/en", params={"next": "/regions"})
    await app.state.engine.dispose()
    cookie = switch.headers["set-cookie"]
    assert cookie.startswith("lang=en;")
    assert ("secure" in cookie.lower().split("; ")) is secure
    assert "httponly" in cookie.lower()


def test_serve_sends_no_server_header_and_links_follow_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.delenv("APPEALS_PUBLIC_URL", raising=False)
    monkeypatch.setenv("APPEALS_ENVIRONMENT", "test")
    for name in ("APPEALS_HOST", "APPEALS_PORT"):
        monkeypatch.delenv(name, raising=False)
    try:
        result = CliRunner().invoke(cli.app, ["serve", "--host", "127.0.0.2", "--port", "8123"])
        assert result.exit_code == 0, result.output
        assert seen["server_header"] is False
        assert seen["access_log"] is False
        assert (seen["host"], seen["port"]) == ("127.0.0.2", 8123)
        # The app (uvicorn's factory) reads the same settings: its links point where it listens.
        assert get_settings().public_base_url == "http://127.0.0.2:8123"
    finally:
        get_settings.cache_clear()


async def test_served_responses_carry_no_server_header(
    database_url: str, unused_tcp_port: int
) -> None:
    env = {**os.environ, "APPEALS_DATABASE_URL": database_url, "APPEALS_ENVIRONMENT": "test"}
    process = await asyncio.create_subprocess_exec(
        str(APPEALS), "serve", "--port", str(unused_tcp_port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_tcp_port}") as client:
            for _ in range(100):
                try:
                    responses = [await client.get(p) for p in ("/healthz", "/", "/nothing-here")]
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("appeals serve did not answer within 10 s")
        for response in responses:
            assert "server" not in response.headers, response.url
            assert response.headers["x-content-type-options"] == "nosniff"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
