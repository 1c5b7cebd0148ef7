"""The optional, self-hosted proof of work (ALTCHA): off by default, enforced once on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import altcha.v2 as altcha_v2
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.main import create_app
from tests.letters.conftest import Inbox, api_body, form, make_world


@pytest.fixture
async def guarded(
    citizen_settings: Settings, sessionmaker: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = citizen_settings.model_copy(
        update={"altcha": True, "altcha_cost": 10, "altcha_max_number": 50}
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    mailer = getattr(app.state, "citizen_mailer", None)
    if mailer is not None:
        await mailer.aclose()
    await app.state.engine.dispose()


async def _solved(client: httpx.AsyncClient) -> str:
    response = await client.get("/altcha/challenge")
    assert response.status_code == 200
    challenge = altcha_v2.Challenge.from_dict(response.json())
    solution = altcha_v2.solve_challenge(challenge)
    assert solution is not None
    return str(altcha_v2.Payload(challenge=challenge, solution=solution).to_base64())


async def test_off_by_default(citizen: httpx.AsyncClient, session: AsyncSession) -> None:
    world = await make_world(session)
    assert (await citizen.get("/altcha/challenge")).status_code == 404
    page = await citizen.get(f"/campaigns/hospital/{world.region.code}")
    assert "<script" not in page.text
    assert "altcha-widget" not in page.text


async def test_required_and_single_use_when_on(
    guarded: httpx.AsyncClient, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    page = await guarded.get(f"/campaigns/hospital/{world.region.code}")
    assert '<script type="module" src="/static/altcha/init.js">' in page.text
    assert (await guarded.get("/static/altcha/altcha.min.js")).status_code == 200
    missing = await guarded.post("/api/v1/campaigns/hospital/submissions", json=api_body(world))
    assert missing.status_code == 422
    assert missing.json()["details"][0]["field"] == "altcha"
    payload = await _solved(guarded)
    ok = await guarded.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, altcha=payload)
    )
    assert ok.status_code == 202, ok.text
    replay = await guarded.post(
        "/api/v1/campaigns/hospital/submissions",
        json=api_body(world, altcha=payload, email="other@example.org"),
    )
    assert replay.status_code == 422
    no_widget = await guarded.post(
        f"/campaigns/hospital/{world.region.code}/submit", data=form(world, email="x@example.org")
    )
    assert no_widget.status_code == 422
    assert 'id="altcha-error"' in no_widget.text
    solved = await guarded.post(
        f"/campaigns/hospital/{world.region.code}/submit",
        data=form(world, email="y@example.org", altcha=await _solved(guarded)),
    )
    assert solved.status_code == 303
