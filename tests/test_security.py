"""Every response forbids third-party loads, framing and referrers; the API explorer is local."""

from __future__ import annotations

import re

import httpx


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
