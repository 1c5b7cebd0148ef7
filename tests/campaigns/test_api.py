"""The campaigns' JSON API over real HTTP: permissions per role, the workflow, hostile input."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import AppealVersion, Campaign
from tests.campaigns.conftest import BODY, Team, campaign_with_text


async def test_workflow_over_the_api(client: httpx.AsyncClient, team: Team) -> None:
    campaign_id, ids = await campaign_with_text(client, team)
    version = ids["version"]
    url = f"/api/v1/staff/versions/{version}"
    publish = {"status": "published"}
    status_url = f"/api/v1/staff/campaigns/{campaign_id}/status"
    # Not publishable without an approved version.
    assert (
        await client.post(status_url, json=publish, headers=team.editor.headers)
    ).status_code == 409
    assert (await client.post(f"{url}/submit", headers=team.editor.headers)).status_code == 200
    queue = await client.get("/api/v1/staff/review-queue", headers=team.lawyer.headers)
    assert [v["id"] for v in queue.json()] == [version]
    # Wrong roles: the editor and the analyst cannot approve.
    for member in (team.editor, team.analyst):
        assert (await client.post(f"{url}/approve", headers=member.headers)).status_code == 403
    approved = await client.post(
        f"{url}/approve", json={"comment": "Без рисков"}, headers=team.lawyer.headers
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    # The analyst cannot publish; the editor can.
    assert (
        await client.post(status_url, json=publish, headers=team.analyst.headers)
    ).status_code == 403
    published = await client.post(status_url, json=publish, headers=team.editor.headers)
    assert published.json()["status"] == "published"
    preview = await client.get(
        f"{url}/preview", params={"deputy_id": team.deputy.id}, headers=team.analyst.headers
    )
    assert preview.status_code == 200
    assert preview.json()["subject"] == "Вода: Петров"
    assert preview.json()["body"].startswith("Уважаемый Иван Сергеевич!")
    # Editing the approved version makes a new draft; the approved one is untouched.
    new = await client.post(
        f"/api/v1/staff/texts/{ids['text']}/versions",
        json={"subject": "Вода: {{ deputy.surname }}", "body": BODY + "\nP.S."},
        headers=team.editor.headers,
    )
    assert new.status_code == 201
    assert (new.json()["number"], new.json()["status"]) == (2, "draft")
    old = await client.get(url, headers=team.editor.headers)
    assert old.json()["status"] == "approved"
    assert old.json()["body"] == BODY
    diff = await client.get(
        f"/api/v1/staff/texts/{ids['text']}/diff?from=1&to=2", headers=team.editor.headers
    )
    assert "+P.S." in diff.json()["lines"]
    # Withdrawal needs a lawyer and a reason; it pauses the campaign left without a text.
    assert (
        await client.post(f"{url}/withdraw", json={"comment": "x"}, headers=team.editor.headers)
    ).status_code == 403
    assert (
        await client.post(f"{url}/withdraw", json={"comment": ""}, headers=team.lawyer2.headers)
    ).status_code == 422
    withdrawn = await client.post(
        f"{url}/withdraw", json={"comment": "Риск"}, headers=team.lawyer2.headers
    )
    assert withdrawn.json()["status"] == "withdrawn"
    campaign = await client.get(
        f"/api/v1/staff/campaigns/{campaign_id}", headers=team.editor.headers
    )
    assert campaign.json()["status"] == "paused"


async def test_four_eyes_over_the_api(client: httpx.AsyncClient, team: Team) -> None:
    made = await client.post(
        "/api/v1/staff/campaigns", json={"slug": "a", "title": "A"}, headers=team.lawyer.headers
    )
    text = await client.post(
        f"/api/v1/staff/campaigns/{made.json()['id']}/texts",
        json={"name": "T", "subject": "S", "body": "B"},
        headers=team.lawyer.headers,
    )
    version = text.json()["versions"][0]["id"]
    await client.post(f"/api/v1/staff/versions/{version}/submit", headers=team.lawyer.headers)
    own = await client.post(
        f"/api/v1/staff/versions/{version}/approve", headers=team.lawyer.headers
    )
    assert own.status_code == 403
    # Messages follow the request's language: Russian by default, English when asked.
    assert "четырёх глаз" in own.json()["message"]
    english = await client.post(
        f"/api/v1/staff/versions/{version}/approve",
        headers={**team.lawyer.headers, "accept-language": "en"},
    )
    assert english.status_code == 403
    assert "four eyes" in english.json()["message"]
    other = await client.post(
        f"/api/v1/staff/versions/{version}/reject",
        json={"comment": "Слишком резко"},
        headers=team.lawyer2.headers,
    )
    assert other.json()["status"] == "rejected"
    assert other.json()["review_comment"] == "Слишком резко"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"subject": "S", "body": "{{ ''.__class__.__mro__ }}"}, "__mro__"),
        ({"subject": "S", "body": "{{ cycler.__init__.__globals__ }}"}, "__globals__"),
        ({"subject": "S", "body": "{% include 'base.html' %}"}, "include"),
        ({"subject": "S", "body": "ok\n{% if %}"}, "line 2: syntax error"),
        ({"subject": "S", "body": "{{ citizen.passport }}"}, "passport"),
        ({"subject": "S\r\nBcc: x@example.org", "body": "B"}, "одной строкой"),
        ({"subject": "S", "body": "x" * 20_001}, "body"),
    ],
)
async def test_bad_templates_are_refused_at_save_time(
    client: httpx.AsyncClient,
    session: AsyncSession,
    team: Team,
    payload: dict[str, str],
    fragment: str,
) -> None:
    _, ids = await campaign_with_text(client, team)
    response = await client.post(
        f"/api/v1/staff/texts/{ids['text']}/versions", json=payload, headers=team.editor.headers
    )
    assert response.status_code == 422
    assert fragment in response.text
    # Nothing half-written.
    count = await session.scalar(select(func.count(AppealVersion.id)))
    assert count == 1


async def test_hostile_requests_get_clean_errors(
    client: httpx.AsyncClient, session: AsyncSession, team: Team
) -> None:
    headers = {**team.editor.headers, "content-type": "application/json"}
    bad_utf8 = await client.post(
        "/api/v1/staff/campaigns", content=b'{"slug": "x", "title": "\xff\xfe"}', headers=headers
    )
    assert bad_utf8.status_code == 400
    assert bad_utf8.json()["error"] == "http_error"
    for body in (
        {"slug": "Bad Slug", "title": "T"},
        {"slug": "ok", "title": "T\nX"},
        {"slug": "ok", "title": "T", "all_regions": False},
        {"slug": "ok", "title": "T", "all_regions": False, "region_codes": ["RU-XXX"]},
        {
            "slug": "ok",
            "title": "T",
            "opens_at": "2026-12-02T00:00Z",
            "closes_at": "2026-12-01T00:00Z",
        },
        {"slug": "ok", "title": "T", "unexpected": 1},
        {"slug": "ok", "title": "T" * 201},
    ):
        response = await client.post(
            "/api/v1/staff/campaigns", json=body, headers=team.editor.headers
        )
        assert response.status_code == 422, body
    assert await session.scalar(select(func.count(Campaign.id))) == 0
    first = await client.post(
        "/api/v1/staff/campaigns", json={"slug": "dup", "title": "T"}, headers=team.editor.headers
    )
    again = await client.post(
        "/api/v1/staff/campaigns", json={"slug": "dup", "title": "T"}, headers=team.editor.headers
    )
    assert (first.status_code, again.status_code) == (201, 409)
    missing = await client.get("/api/v1/staff/versions/999999", headers=team.editor.headers)
    assert missing.status_code == 404
    huge = await client.get("/api/v1/staff/versions/99999999999", headers=team.editor.headers)
    assert huge.status_code == 422


async def test_region_targets(client: httpx.AsyncClient, team: Team) -> None:
    made = await client.post(
        "/api/v1/staff/campaigns",
        json={
            "slug": "tver",
            "title": "Тверь",
            "all_regions": False,
            "region_codes": ["ru-tve"],
            "legislature_level": "city",
            "requires_address": True,
        },
        headers=team.editor.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["region_codes"] == ["RU-TVE"]
    assert made.json()["legislature_level"] == "city"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"all_regions": "false", "region_codes": ["RU-TVE"]}, "all_regions"),
        ({"requires_address": 1}, "requires_address"),
        ({"opens_at": 1_800_000_000}, "opens_at"),
        ({"region_codes": ["RU-TVE\x00"], "all_regions": False}, "region_codes.0"),
        ({"title": "Кампания\u202e"}, "title"),
        ({"description": "Строка\nи \x1b[31mкрасная"}, "description"),
    ],
)
async def test_campaigns_take_strict_types_and_clean_text(
    client: httpx.AsyncClient,
    session: AsyncSession,
    team: Team,
    changes: dict[str, object],
    field: str,
) -> None:
    body = {"slug": "strict", "title": "Кампания"} | changes
    response = await client.post("/api/v1/staff/campaigns", json=body, headers=team.editor.headers)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
    assert await session.scalar(select(func.count(Campaign.id))) == 0
