"""Rate limits on the citizen flow, in memory and in Redis: per address, network and e-mail;
the client address comes from X-Forwarded-For only behind a trusted proxy."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.main import create_app
from tests.databases import unavailable
from tests.letters.conftest import Inbox, api_body, make_world

REDIS_URL = os.environ.get("APPEALS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["memory", "redis"])
async def limited(
    request: pytest.FixtureRequest, citizen_settings: Settings, sessionmaker: Any
) -> AsyncIterator[Any]:
    """Builds a client whose limits are the given settings, on one kind of storage."""
    made: list[Any] = []

    async def make(**limits: str) -> httpx.AsyncClient:
        settings = citizen_settings.model_copy(
            update={
                # A fresh key per test: counters of other runs in Redis do not apply.
                "secret_key": uuid.uuid4().hex * 2,
                "redis_url": REDIS_URL if request.param == "redis" else None,
                **limits,
            }
        )
        app = create_app(settings)
        if not await app.state.rate_limiter.available():
            unavailable(f"Redis is not reachable at {REDIS_URL}")
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        made.append((app, client))
        return client

    yield make
    for app, client in made:
        await client.aclose()
        mailer = getattr(app.state, "citizen_mailer", None)
        if mailer is not None:
            await mailer.aclose()
        await app.state.rate_limiter.aclose()
        await app.state.engine.dispose()


async def test_per_address_limit_answers_429_with_a_human_message(
    limited: Any, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    client = await limited(limit_submit_per_address="2/minute")
    for n in range(2):
        ok = await client.post(
            "/api/v1/campaigns/hospital/submissions",
            json=api_body(world, email=f"p{n}@example.org"),
        )
        assert ok.status_code == 202
    refused = await client.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, email="p9@example.org")
    )
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    page = await client.post(
        "/campaigns/hospital/RU-TVE/submit",
        data={
            "full_name": "Анна Петрова",
            "email": "p10@example.org",
            "locality": "Тверь",
            "consent": "yes",
            "deputy": str(world.deputies[0].id),
        },
        headers={"accept-language": "en"},
    )
    assert page.status_code == 429
    assert "text/html" in page.headers["content-type"]
    assert "Please wait a little" in page.text


async def test_per_email_limit_is_case_insensitive(
    limited: Any, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    client = await limited(limit_submit_per_email="1/hour")
    first = await client.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, email="a@example.org")
    )
    assert first.status_code == 202
    second = await client.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, email="A@EXAMPLE.org")
    )
    assert second.status_code == 429


async def test_network_limits_behind_a_trusted_proxy(
    limited: Any, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    client = await limited(
        limit_submit_per_net24="2/minute",
        limit_submit_per_net16="3/minute",
        trusted_proxies="127.0.0.0/8",
    )

    async def post(address: str, n: int) -> int:
        response = await client.post(
            "/api/v1/campaigns/hospital/submissions",
            json=api_body(world, email=f"n{n}@example.org"),
            headers={"x-forwarded-for": f"192.0.2.99, {address}"},
        )
        return int(response.status_code)

    assert await post("198.51.100.1", 1) == 202
    assert await post("198.51.100.2", 2) == 202
    assert await post("198.51.100.3", 3) == 429  # the same /24
    assert await post("198.51.7.1", 4) == 202  # another /24, same /16
    assert await post("198.51.8.1", 5) == 429  # the /16 is spent (3 allowed, 4 counted)


async def test_forwarded_header_ignored_without_a_trusted_proxy(
    limited: Any, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    client = await limited(limit_submit_per_address="1/minute")
    codes = [
        (
            await client.post(
                "/api/v1/campaigns/hospital/submissions",
                json=api_body(world, email=f"f{n}@example.org"),
                headers={"x-forwarded-for": f"203.0.113.{n}"},
            )
        ).status_code
        for n in range(2)
    ]
    assert codes == [202, 429]


async def test_link_pages_are_limited(limited: Any, session: AsyncSession) -> None:
    client = await limited(limit_links_per_address="2/minute")
    codes = [(await client.get("/status/nothing-here")).status_code for _ in range(3)]
    assert codes == [404, 404, 429]
