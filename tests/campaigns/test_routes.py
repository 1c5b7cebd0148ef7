"""Campaign pages and API over real HTTP: permissions per role, the workflow, hostile input."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import AppealVersion, Campaign
from tests.campaigns.conftest import Team
from tests.staff.auth import login_ok

BODY = "{{ deputy.salutation }}!\n\nПрошу принять закон.\n\n{{ citizen.full_name }}, {{ date }}"


async def _campaign_with_text(client: httpx.AsyncClient, team: Team) -> tuple[int, dict[str, int]]:
    made = await client.post(
        "/api/v1/staff/campaigns",
        json={"slug": "clean-water", "title": "Чистая вода", "description": "Описание"},
        headers=team.editor.headers,
    )
    assert made.status_code == 201, made.text
    campaign_id = made.json()["id"]
    text = await client.post(
        f"/api/v1/staff/campaigns/{campaign_id}/texts",
        json={"name": "Основной", "subject": "Вода: {{ deputy.surname }}", "body": BODY},
        headers=team.editor.headers,
    )
    assert text.status_code == 201, text.text
    body = text.json()
    return campaign_id, {"text": body["id"], "version": body["versions"][0]["id"]}


async def test_workflow_over_the_api(client: httpx.AsyncClient, team: Team) -> None:
    campaign_id, ids = await _campaign_with_text(client, team)
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
    _, ids = await _campaign_with_text(client, team)
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


async def test_pages_anonymous_redirect_and_roles(client: httpx.AsyncClient, team: Team) -> None:
    campaign_id, ids = await _campaign_with_text(client, team)
    pages = [
        "/staff/campaigns",
        f"/staff/campaigns/{campaign_id}",
        f"/staff/texts/{ids['text']}",
        f"/staff/versions/{ids['version']}",
        "/staff/review",
    ]
    for page in pages:
        response = await client.get(page)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/staff/login?next=")
    csrf = await login_ok(client, team.analyst.email)
    for page in pages:
        assert (await client.get(page)).status_code == 200, page
    forbidden = await client.post(
        f"/staff/versions/{ids['version']}/submit", data={"csrf_token": csrf}
    )
    assert forbidden.status_code == 403
    assert "editor" in forbidden.text


async def test_page_workflow(client: httpx.AsyncClient, session: AsyncSession, team: Team) -> None:
    csrf = await login_ok(client, team.editor.email)
    form = await client.get("/staff/campaigns/new")
    for field in ("title", "slug", "description", "legislature_level", "opens_at", "closes_at"):
        assert f'for="{field}"' in form.text
    created = await client.post(
        "/staff/campaigns",
        data={
            "csrf_token": csrf,
            "title": "Чистый воздух",
            "slug": "clean-air",
            "all_regions": "true",
            "description": "Для граждан",
            "legislature_level": "regional",
            "opens_at": "2026-12-01T09:00",
        },
    )
    assert created.status_code == 303
    campaign_url = created.headers["location"]
    campaign_id = int(campaign_url.rsplit("/", 1)[1])
    # A syntax error keeps what was typed and says where.
    bad = await client.post(
        f"/staff/campaigns/{campaign_id}/texts",
        data={
            "csrf_token": csrf,
            "name": "Основной",
            "subject": "Тема",
            "body": "Строка\n{{ deputy.surname",
        },
    )
    assert bad.status_code == 422
    assert "line 2" in bad.text
    assert "{{ deputy.surname</textarea>" in bad.text
    saved = await client.post(
        f"/staff/campaigns/{campaign_id}/texts",
        data={
            "csrf_token": csrf,
            "name": "Основной",
            "subject": "Тема",
            "body": "Текст\r\n{{ deputy.salutation }}",
        },
    )
    assert saved.status_code == 303
    version_url = saved.headers["location"]
    version_id = int(version_url.rsplit("/", 1)[1])
    page = await client.get(version_url)
    assert "Отправить юристу" in page.text
    assert (
        await client.post(f"{version_url}/submit", data={"csrf_token": csrf})
    ).status_code == 303
    # The lawyer approves in the browser.
    csrf = await login_ok(client, team.lawyer2.email)
    queue = await client.get("/staff/review")
    assert f"/staff/versions/{version_id}" in queue.text
    approved = await client.post(
        f"{version_url}/approve", data={"csrf_token": csrf, "comment": "ок"}
    )
    assert approved.status_code == 303
    # Preview for a chosen deputy.
    preview = await client.get(f"{version_url}/preview?region=RU-TVE&deputy_id={team.deputy.id}")
    assert "Уважаемый Иван Сергеевич" in preview.text
    # The editor publishes; the page shows it.
    csrf = await login_ok(client, team.editor.email)
    published = await client.post(
        f"{campaign_url}/status", data={"csrf_token": csrf, "status": "published"}
    )
    assert published.status_code == 303
    page = await client.get(campaign_url)
    assert 'data-status="published"' in page.text
    # A new version and the diff page.
    text_id = int(re.findall(r"/staff/texts/(\d+)", page.text)[0])
    again = await client.post(
        f"/staff/texts/{text_id}/versions",
        data={"csrf_token": csrf, "subject": "Тема", "body": "Текст\n{{ deputy.salutation }}!"},
    )
    assert again.status_code == 303
    diff = await client.get(f"/staff/texts/{text_id}/diff?from=1&to=2")
    assert "+{{ deputy.salutation }}!" in diff.text
    duplicate = await client.post(
        f"/staff/texts/{text_id}/versions",
        data={"csrf_token": csrf, "subject": "Тема", "body": "Текст\n{{ deputy.salutation }}!"},
    )
    assert duplicate.status_code == 409
    for url in (
        f"/staff/texts/{text_id}",
        f"{campaign_url}/edit",
        "/staff/help/variables",
        "/staff/account",
    ):
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "no-store"
    edited = await client.post(
        campaign_url,
        data={
            "csrf_token": csrf,
            "title": "Чистый воздух!",
            "slug": "clean-air",
            "region_codes": ["RU-TVE"],
            "legislature_level": "regional",
        },
    )
    assert edited.status_code == 303
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id).execution_options(populate_existing=True)
    )
    assert campaign is not None
    assert (campaign.title, campaign.all_regions) == ("Чистый воздух!", False)
