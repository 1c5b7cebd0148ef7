"""Statistics over HTTP: the public counter, permissions, the dashboard and its charts, and bad
filters."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import VersionStatus
from app.config import Settings
from app.staff.models import Role
from tests.factories import create_api_token, create_staff, create_version
from tests.staff.auth import login_ok
from tests.stats.seed import DAY1, DAY2, SENDER_EMAIL, SENDER_NAME, seed


async def test_public_counter_on_the_api_and_the_home_page(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seeded = await seed(session, settings)
    response = await client.get("/api/v1/stats/public")
    assert response.status_code == 200
    assert response.json() == {"letters_sent": 5, "campaign": None}
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["access-control-allow-origin"] == "*"
    main = await client.get(f"/api/v1/stats/public/{seeded.main.slug}")
    assert main.json() == {"letters_sent": 3, "campaign": "save-hospital"}
    assert (await client.get("/api/v1/stats/public/clean-river")).json()["letters_sent"] == 2
    # Drafts are not public, and unknown campaigns are not found.
    assert (await client.get("/api/v1/stats/public/secret-draft")).status_code == 404
    assert (await client.get("/api/v1/stats/public/nothing-here")).status_code == 404
    home = await client.get("/", headers={"accept-language": "en"})
    assert "5 letters sent so far." in home.text
    home_ru = await client.get("/")
    assert "Отправлено 5 писем." in home_ru.text
    # The campaign page counts its own letters (the campaign needs an approved text to be open).
    author = await create_staff(session, Role.editor)
    await create_version(
        session, campaign=seeded.main, author=author, status=VersionStatus.approved
    )
    await session.commit()
    page = await client.get(f"/campaigns/{seeded.main.slug}", headers={"accept-language": "en"})
    assert page.status_code == 200
    assert "3 letters sent so far." in page.text


@pytest.mark.parametrize(
    "path",
    ["/api/v1/staff/stats", "/api/v1/staff/stats/export?format=csv"],
)
async def test_api_needs_analyst_or_admin(
    client: httpx.AsyncClient, session: AsyncSession, path: str
) -> None:
    editor = await create_staff(session, Role.editor, Role.lawyer)
    analyst = await create_staff(session, Role.analyst)
    admin = await create_staff(session, Role.admin)
    tokens = {
        "editor": await create_api_token(session, editor),
        "analyst": await create_api_token(session, analyst),
        "admin": await create_api_token(session, admin),
    }
    await session.commit()
    assert (await client.get(path)).status_code == 401
    for who, expected in (("editor", 403), ("analyst", 200), ("admin", 200)):
        response = await client.get(path, headers={"authorization": f"Bearer {tokens[who]}"})
        assert response.status_code == expected, (who, response.text)


@pytest.mark.parametrize(
    "path", ["/staff/stats", "/staff/stats/chart/days.svg", "/staff/stats/export.csv"]
)
async def test_pages_need_analyst_or_admin(
    client: httpx.AsyncClient, session: AsyncSession, path: str
) -> None:
    editor = await create_staff(session, Role.editor)
    analyst = await create_staff(session, Role.analyst)
    await session.commit()
    anonymous = await client.get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/staff/login?next=")
    await login_ok(client, editor.email)
    assert (await client.get(path)).status_code == 403
    await login_ok(client, analyst.email)
    assert (await client.get(path)).status_code == 200


async def _analyst(client: httpx.AsyncClient, session: AsyncSession) -> None:
    analyst = await create_staff(session, Role.analyst)
    await session.commit()
    await login_ok(client, analyst.email)


async def test_dashboard_tables_and_links(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await seed(session, settings)
    await _analyst(client, session)
    page = await client.get("/staff/stats", headers={"accept-language": "en"})
    assert page.status_code == 200
    html = page.text
    for text in ("Letters by status", "save-hospital", "Alpha Oblast", "duma-a.example.org"):
        assert text in html
    assert 'src="/staff/stats/chart/days.svg"' in html
    assert 'href="/staff/stats/export.xlsx"' in html
    for forbidden in ("style=", "<script", SENDER_EMAIL, SENDER_NAME):
        assert forbidden not in html
    # The filter carries into the charts and exports.
    filtered = await client.get(
        "/staff/stats", params={"campaign": "save-hospital", "region": "ru-tsa"}
    )
    assert filtered.status_code == 200
    assert (
        "/staff/stats/chart/regions.svg?campaign=save-hospital&amp;region=RU-TSA" in filtered.text
    )


async def test_summary_api_agrees_with_the_seed(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seeded = await seed(session, settings)
    await _analyst(client, session)
    body = (await client.get("/api/v1/staff/stats")).json()
    assert {k: v for k, v in body["totals"].items() if v} == seeded.totals
    assert body["total"] == 12
    campaigns = {c["key"]: c for c in body["by_campaign"]}
    assert campaigns["save-hospital"]["total"] == 9
    assert campaigns["save-hospital"]["senders"] == 5  # see seed.SENDERS
    assert campaigns["clean-river"]["senders"] == 3
    assert [d["key"] for d in body["by_day"]] == [DAY1.isoformat(), DAY2.isoformat()]
    one_day = (await client.get("/api/v1/staff/stats", params={"since": DAY2.isoformat()})).json()
    assert one_day["total"] == 6
    region = (await client.get("/api/v1/staff/stats", params={"region": "RU-TSB"})).json()
    assert region["total"] == 6
    assert [r["key"] for r in region["by_region"]] == ["RU-TSB"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"campaign": "nope"}, "Неизвестная кампания «nope»."),
        ({"region": "RU-XXX"}, "Неизвестный регион «RU-XXX»."),
        ({"since": "2026-11-22", "until": "2026-11-21"}, "is after the end date"),
        ({"since": "yesterday"}, "since: expected a date as YYYY-MM-DD"),
    ],
)
async def test_bad_filters_are_clear_errors(
    client: httpx.AsyncClient, session: AsyncSession, params: dict[str, str], message: str
) -> None:
    analyst = await create_staff(session, Role.analyst)
    token = await create_api_token(session, analyst)
    await session.commit()
    auth = {"authorization": f"Bearer {token}"}
    for path in ("/api/v1/staff/stats", "/api/v1/staff/stats/export"):
        response = await client.get(path, params=params, headers=auth)
        assert response.status_code == 422
        assert message in response.json()["message"]
    await login_ok(client, analyst.email)
    page = await client.get("/staff/stats", params=params)
    assert page.status_code == 422
    assert message.replace("'", "&#39;") in page.text


@pytest.mark.parametrize("name", ["days", "regions", "health"])
async def test_charts_are_clean_svg(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, name: str
) -> None:
    await seed(session, settings)
    await _analyst(client, session)
    for params in ({}, {"campaign": "clean-river", "since": "2030-01-01"}):
        response = await client.get(f"/staff/stats/chart/{name}.svg", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        svg = response.text
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        for forbidden in ("<script", "<style", "style=", "http://fonts", "<image", 'href="http'):
            assert forbidden not in svg, forbidden
    assert (await client.get("/staff/stats/chart/pie.svg")).status_code == 404
