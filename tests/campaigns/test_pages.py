"""The campaigns' staff pages over real HTTP: sign-in and roles, the workflow in the browser."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign
from tests.campaigns.conftest import Team, campaign_with_text
from tests.staff.auth import login_ok


async def test_pages_anonymous_redirect_and_roles(client: httpx.AsyncClient, team: Team) -> None:
    campaign_id, ids = await campaign_with_text(client, team)
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
