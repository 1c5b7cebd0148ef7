"""Hostile input on staff pages: clean 4xx answers, never a 500, nothing half-written."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import AppealText, Campaign
from app.staff.models import Role
from tests.factories import create_campaign, create_staff
from tests.staff.auth import login_ok

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def editor_csrf(client: httpx.AsyncClient, session: AsyncSession) -> tuple[str, int]:
    editor = await create_staff(session, Role.editor, email="ed@campaign.example.org")
    campaign = await create_campaign(session, author=editor)
    await session.commit()
    return await login_ok(client, "ed@campaign.example.org"), campaign.id


async def test_bad_utf8_and_oversized_forms(
    client: httpx.AsyncClient, session: AsyncSession, editor_csrf: tuple[str, int]
) -> None:
    csrf, campaign_id = editor_csrf
    url = f"/staff/campaigns/{campaign_id}/texts"
    bodies = [
        f"csrf_token={csrf}&name=%FF%FE&subject=%C0%AF&body=%ED%A0%80".encode(),
        f"csrf_token={csrf}&name=x&subject=s&body=".encode() + b"a" * 100_000,
        f"csrf_token={csrf}&name=x&subject=s%0D%0ABcc:%20a@example.org&body=b".encode(),
        f"csrf_token={csrf}&name=x&subject=s&body=%00".encode(),
    ]
    for body in bodies:
        response = await client.post(url, content=body, headers=FORM)
        assert 400 <= response.status_code < 500, (body[80:], response.status_code)
    # (Raw, unescaped bytes in a urlencoded body are read as Latin-1 by Starlette: browsers never
    # send them, and what they become is valid text, so there is nothing to detect.)
    assert await session.scalar(select(func.count(AppealText.id))) == 0


async def test_duplicate_submissions(
    client: httpx.AsyncClient, session: AsyncSession, editor_csrf: tuple[str, int]
) -> None:
    csrf, _ = editor_csrf
    form = {"csrf_token": csrf, "title": "Т", "slug": "same", "all_regions": "true"}
    first = await client.post("/staff/campaigns", data=form)
    second = await client.post("/staff/campaigns", data=form)
    assert (first.status_code, second.status_code) == (303, 409)
    assert await session.scalar(select(func.count(Campaign.id)).where(Campaign.slug == "same")) == 1


@pytest.mark.parametrize(
    "target",
    ["/staff/login?next=%0D%0ASet-Cookie:%20x=1", "/staff/login?next=" + "a" * 600],
)
async def test_hostile_next_parameter(client: httpx.AsyncClient, target: str) -> None:
    response = await client.get(target)
    assert response.status_code in (200, 422)
    assert "x=1" not in response.headers.get("set-cookie", "")


async def test_unknown_ids_and_bad_paths(
    client: httpx.AsyncClient, editor_csrf: tuple[str, int]
) -> None:
    for path in (
        "/staff/campaigns/999999",
        "/staff/texts/999999",
        "/staff/versions/999999",
        "/staff/versions/999999/preview",
        "/staff/campaigns/abc",
        "/staff/campaigns/-1",
        "/staff/texts/1/diff?from=1&to=x",
    ):
        response = await client.get(path)
        assert response.status_code in (404, 422), path
