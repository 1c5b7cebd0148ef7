"""The read API and registry pages over real HTTP through the ASGI app."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_deputy, create_legislature, create_region


async def _registry(session: AsyncSession) -> dict[str, int]:
    moscow = await create_region(session, code="RU-MOW", name_ru="Москва", name_en="Moscow")
    tver = await create_region(session, code="RU-TVE", name_ru="Тверская область", name_en="Tver")
    duma = await create_legislature(session, region=moscow, code="RU-MOW-LEG")
    await create_legislature(session, region=tver, code="RU-TVE-LEG")
    ids = {}
    for surname in ("Яковлев", "Ёлкин", "Абрамова", "Жуков"):
        ids[surname] = (await create_deputy(session, legislature=duma, surname=surname)).id
    ids["retired"] = (
        await create_deputy(session, legislature=duma, surname="Б", is_active=False)
    ).id
    await session.commit()
    return ids


async def test_regions_with_active_counts(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await _registry(session)
    response = await client.get("/api/v1/regions")
    assert response.status_code == 200
    body = response.json()
    assert [(r["code"], r["active_deputies"]) for r in body] == [("RU-MOW", 4), ("RU-TVE", 0)]
    assert body[0]["name_en"] == "Moscow"
    assert body[0]["legislatures"][0]["code"] == "RU-MOW-LEG"


async def test_region_deputies_sorted_by_surname(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await _registry(session)
    response = await client.get("/api/v1/regions/ru-mow/deputies")
    assert response.status_code == 200
    body = response.json()
    # Ё sorts with Е, before Ж, on both databases; the inactive deputy is left out.
    assert [d["surname"] for d in body] == ["Абрамова", "Ёлкин", "Жуков", "Яковлев"]
    assert body[0]["region"]["code"] == "RU-MOW"
    assert body[0]["full_name"] == "Абрамова Пётр Сергеевич"


async def test_deputy_by_id_including_inactive(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ids = await _registry(session)
    response = await client.get(f"/api/v1/deputies/{ids['retired']}")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["legislature"]["code"] == "RU-MOW-LEG"


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/api/v1/regions/RU-XYZ/deputies", 404, "code"),
        ("/api/v1/regions/not-a-code/deputies", 422, "code"),
        ("/api/v1/regions/%00%ff/deputies", 422, "code"),
        ("/api/v1/deputies/999999", 404, "deputy_id"),
        ("/api/v1/deputies/abc", 422, "deputy_id"),
        ("/api/v1/deputies/0", 422, "deputy_id"),
        ("/api/v1/deputies/99999999999999999999", 422, "deputy_id"),
    ],
)
async def test_bad_input_is_json_error(
    client: httpx.AsyncClient, session: AsyncSession, path: str, status: int, field: str
) -> None:
    await _registry(session)
    response = await client.get(path)
    assert response.status_code == status
    body = response.json()
    assert body["message"]
    assert body["details"][0]["field"] == field


async def test_unknown_api_path_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "http_error"


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_openapi_documents_the_read_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/api/v1/regions",
        "/api/v1/regions/{code}/deputies",
        "/api/v1/deputies/{deputy_id}",
    } <= set(paths)
    assert (await client.get("/docs")).status_code == 200


async def test_registry_pages(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await _registry(session)
    # "/" is the citizen home page now; the registry lives at /regions.
    home = await client.get("/regions")
    assert home.status_code == 200
    assert 'href="/regions/RU-MOW"' in home.text
    region = await client.get("/regions/RU-MOW")
    assert region.status_code == 200
    assert "Абрамова Пётр Сергеевич" in region.text
    missing = await client.get("/regions/RU-XYZ")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "RU-XYZ" in missing.text
