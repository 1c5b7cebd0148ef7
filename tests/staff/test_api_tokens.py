"""API tokens: bearer tokens for scripts, over real HTTP through the ASGI app."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.staff.models import Role
from tests.factories import create_staff
from tests.staff.auth import login_ok


async def test_api_tokens_for_scripts(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "ed@campaign.example.org")
    created = await client.post(
        "/api/v1/staff/tokens", json={"name": "export script"}, headers={"X-CSRF-Token": csrf}
    )
    assert created.status_code == 201
    raw = created.json()["token"]
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {raw}"}
    # Bearer requests need no CSRF token.
    made = await client.post(
        "/api/v1/staff/campaigns", json={"slug": "s", "title": "T"}, headers=bearer
    )
    assert made.status_code == 201
    listed = await client.get("/api/v1/staff/tokens", headers=bearer)
    assert "token" not in listed.json()[0]
    assert listed.json()[0]["last_used_at"] is not None
    revoked = await client.delete(f"/api/v1/staff/tokens/{created.json()['id']}", headers=bearer)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/staff/me", headers=bearer)).status_code == 401
    for junk in ("Bearer apl_forged", "Bearer " + "x" * 5000, "Basic Zm9vOmJhcg=="):
        response = await client.get("/api/v1/staff/me", headers={"Authorization": junk})
        assert response.status_code == 401
    # Bearer tokens do not open pages.
    assert (await client.get("/staff", headers=bearer)).status_code == 303
