"""`Allow` names every method of a path (app.methods): on a 405, and in the answer to OPTIONS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.main import create_app


@pytest.fixture
async def plain() -> AsyncIterator[httpx.AsyncClient]:
    """The app without a database: nothing here gets as far as one."""
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.engine.dispose()


async def test_a_405_names_every_method_of_the_path(plain: httpx.AsyncClient) -> None:
    # Starlette named the methods of the first route that matched: `Allow: GET` here.
    response = await plain.delete("/api/v1/campaigns")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, OPTIONS"
    response = await plain.put("/campaigns/hospital/RU-TVE/submit")
    assert (response.status_code, response.headers["allow"]) == (405, "POST, OPTIONS")
    response = await plain.put("/confirm/abc")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, POST, OPTIONS")


async def test_options_answers_with_every_method(plain: httpx.AsyncClient) -> None:
    response = await plain.options("/api/v1/staff/campaigns")
    assert (response.status_code, response.headers["allow"]) == (204, "GET, POST, OPTIONS")
    assert response.content == b""
    response = await plain.options("/api/v1/staff/campaigns/7")
    assert response.headers["allow"] == "GET, PUT, OPTIONS"
    assert (await plain.options("/nowhere")).status_code == 404


async def test_options_agrees_with_the_openapi_document(plain: httpx.AsyncClient) -> None:
    paths = (await plain.get("/openapi.json")).json()["paths"]
    for path, operations in paths.items():
        concrete = path.replace("{", "").replace("}", "")  # any value matches a parameter
        response = await plain.options(concrete)
        assert response.status_code == 204, path
        advertised = set(response.headers["allow"].split(", "))
        assert advertised == {method.upper() for method in operations} | {"OPTIONS"}, path
