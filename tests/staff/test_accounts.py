"""Staff accounts and the audit log: admins manage both, a deactivated member loses every way in,
the command line creates accounts."""

from __future__ import annotations

import json

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.cli import app as cli
from app.config import get_settings
from app.db import create_engine
from app.staff.models import Role, StaffMember
from tests.factories import STAFF_PASSWORD, create_api_token, create_staff
from tests.staff.auth import csrf_from, login, login_ok


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("role", [Role.editor, Role.lawyer, Role.analyst])
async def test_only_admins_manage_staff_and_read_the_audit_log(
    client: httpx.AsyncClient, session: AsyncSession, role: Role
) -> None:
    staff = await create_staff(session, role, email="someone@campaign.example.org")
    token = await create_api_token(session, staff)
    await session.commit()
    headers = bearer(token)
    assert (await client.get("/api/v1/staff/members", headers=headers)).status_code == 403
    assert (await client.get("/api/v1/staff/audit", headers=headers)).status_code == 403
    new = {"email": "x@campaign.example.org", "password": STAFF_PASSWORD, "roles": ["admin"]}
    assert (
        await client.post("/api/v1/staff/members", json=new, headers=headers)
    ).status_code == 403
    await login_ok(client, "someone@campaign.example.org")
    assert (await client.get("/staff/members")).status_code == 403
    assert (await client.get("/staff/audit")).status_code == 403


async def test_admin_creates_and_changes_staff_with_an_audit_trail(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_staff(session, Role.admin, email="admin@campaign.example.org")
    token = await create_api_token(session, admin)
    await session.commit()
    headers = bearer(token)
    created = await client.post(
        "/api/v1/staff/members",
        json={
            "email": "New.Lawyer@Campaign.Example.org",
            "name": "Юрист",
            "password": STAFF_PASSWORD,
            "roles": ["lawyer", "editor"],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    member = created.json()
    assert member["email"] == "new.lawyer@campaign.example.org"
    assert member["roles"] == ["editor", "lawyer"]
    assert "password" not in created.text
    again = await client.post(
        "/api/v1/staff/members",
        json={
            "email": "new.lawyer@campaign.example.org",
            "password": STAFF_PASSWORD,
            "roles": ["editor"],
        },
        headers=headers,
    )
    assert again.status_code == 409
    short = await client.post(
        "/api/v1/staff/members",
        json={"email": "p@campaign.example.org", "password": "short", "roles": ["editor"]},
        headers=headers,
    )
    assert short.status_code == 422
    changed = await client.patch(
        f"/api/v1/staff/members/{member['id']}", json={"roles": ["lawyer"]}, headers=headers
    )
    assert changed.json()["roles"] == ["lawyer"]
    # An admin cannot lock themselves out.
    me = await client.patch(
        f"/api/v1/staff/members/{admin.id}", json={"is_active": False}, headers=headers
    )
    assert me.status_code == 409
    audit = (await client.get("/api/v1/staff/audit", headers=headers)).json()
    update = next(e for e in audit["entries"] if e["action"] == "staff.update")
    assert update["actor"] == "admin@campaign.example.org"
    assert update["before"]["roles"] == ["editor", "lawyer"]
    assert update["after"]["roles"] == ["lawyer"]
    assert "password" not in str(audit)
    assert "argon2" not in str(audit)
    # The audit page shows the same.
    await login_ok(client, "admin@campaign.example.org")
    page = await client.get("/staff/audit")
    assert page.status_code == 200
    assert "staff.update" in page.text


async def test_admin_pages_create_a_member(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.admin, email="admin@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "admin@campaign.example.org")
    page = await client.get("/staff/members")
    assert 'for="new-email"' in page.text
    response = await client.post(
        "/staff/members",
        data={
            "csrf_token": csrf,
            "email": "an@campaign.example.org",
            "password": STAFF_PASSWORD,
            "roles": ["analyst", "editor"],
        },
    )
    assert response.status_code == 303
    member = await session.scalar(
        select(StaffMember).where(StaffMember.email == "an@campaign.example.org")
    )
    assert member is not None
    assert member.roles == {Role.analyst, Role.editor}
    bad = await client.post(
        "/staff/members",
        data={
            "csrf_token": csrf,
            "email": "not-an-address",
            "password": STAFF_PASSWORD,
            "roles": ["editor"],
        },
    )
    assert bad.status_code == 422


async def _password_hash(url: str, email: str) -> str:
    engine = create_engine(url)
    async with engine.connect() as connection:
        value = await connection.scalar(
            select(StaffMember.password_hash).where(StaffMember.email == email)
        )
    await engine.dispose()
    assert value is not None
    return value


async def _verify(url: str, email: str, password: str) -> bool:
    return PasswordHasher().verify(await _password_hash(url, email), password)


def test_cli_creates_staff_with_the_password_from_the_environment(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],  # empties the database afterwards
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPEALS_DATABASE_URL", database_url)
    monkeypatch.setenv("APPEALS_ENVIRONMENT", "test")
    monkeypatch.setenv("APPEALS_STAFF_PASSWORD", STAFF_PASSWORD)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            cli,
            ["staff", "create", "Cli@Campaign.example.org", "--role", "admin", "--role", "lawyer"],
        )
        assert result.exit_code == 0, result.output
        assert "cli@campaign.example.org (admin, lawyer)" in result.output
        again = runner.invoke(
            cli, ["staff", "create", "cli@campaign.example.org", "--role", "admin"]
        )
        assert again.exit_code == 1
        monkeypatch.setenv("APPEALS_STAFF_PASSWORD", "short")
        weak = runner.invoke(
            cli, ["staff", "create", "weak@campaign.example.org", "--role", "admin"]
        )
        assert weak.exit_code == 1
        # Through app.text's gate, as on the pages: a NUL never reaches the database.
        monkeypatch.setenv("APPEALS_STAFF_PASSWORD", STAFF_PASSWORD)
        hostile = runner.invoke(cli, ["staff", "set-password", "cli@campaign.example.org\x00"])
        assert hostile.exit_code == 1
        assert "email: Value error, must not contain control characters" in hostile.output
        monkeypatch.setenv("APPEALS_STAFF_PASSWORD", STAFF_PASSWORD + "\x07")
        bell = runner.invoke(cli, ["staff", "set-password", "cli@campaign.example.org"])
        assert bell.exit_code == 1
        assert "password:" in bell.output
    finally:
        get_settings.cache_clear()


async def test_deactivation_ends_sessions_and_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_staff(session, Role.admin, email="admin@campaign.example.org")
    editor = await create_staff(session, Role.editor, email="ed@campaign.example.org")
    admin_token = await create_api_token(session, admin)
    editor_token = await create_api_token(session, editor)
    await session.commit()
    await login_ok(client, "ed@campaign.example.org")
    assert (await client.get("/api/v1/staff/me")).status_code == 200
    response = await client.patch(
        f"/api/v1/staff/members/{editor.id}",
        json={"is_active": False},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 200
    assert (await client.get("/api/v1/staff/me")).status_code == 401
    headers = {"Authorization": f"Bearer {editor_token}"}
    assert (await client.get("/api/v1/staff/me", headers=headers)).status_code == 401
    assert (await login(client, "ed@campaign.example.org")).status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "\u3164\u3164\u3164"}, "name"),  # Hangul fillers: looks empty
        ({"name": "Анна\u2060Петрова"}, "name"),  # a word joiner
        ({"name": "42"}, "name"),
        ({"email": "a" * 65 + "@campaign.example.org"}, "email"),
        ({"email": "anna\u00ad@campaign.example.org"}, "email"),
        ({"password": STAFF_PASSWORD + "\x00"}, "password"),
        ({"password": STAFF_PASSWORD + "\ud800"}, "password"),
    ],
)
async def test_staff_names_and_addresses_as_a_registrar_takes_them(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, str], field: str
) -> None:
    admin = await create_staff(session, Role.admin, email="root@campaign.example.org")
    token = await create_api_token(session, admin)
    await session.commit()
    new = {"email": "x@campaign.example.org", "password": STAFF_PASSWORD, "roles": ["editor"]}
    response = await client.post(
        "/api/v1/staff/members",
        content=json.dumps(new | changes),  # ASCII: a lone surrogate travels as \ud800
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
    # The same on the admins' page.
    await login_ok(client, "root@campaign.example.org")
    if "\ud800" not in changes.get("password", ""):
        csrf = csrf_from((await client.get("/staff/members")).text)
        page = await client.post(
            "/staff/members", data={**new, **changes, "roles": "editor", "csrf_token": csrf}
        )
        assert page.status_code == 422
        assert f"<strong>{field}</strong>" in page.text
    await session.rollback()
    assert await session.scalar(select(func.count(StaffMember.id))) == 1


async def test_the_staff_api_takes_strict_types(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_staff(session, Role.admin, email="root@campaign.example.org")
    token = await create_api_token(session, admin)
    await session.commit()
    coerced = await client.patch(
        f"/api/v1/staff/members/{admin.id}", json={"is_active": "no"}, headers=bearer(token)
    )
    assert coerced.status_code == 422
    assert coerced.json()["details"][0]["field"] == "is_active"
    days = await client.post(
        "/api/v1/staff/tokens", json={"name": "script", "days": "30"}, headers=bearer(token)
    )
    assert days.status_code == 422
    assert days.json()["details"][0]["field"] == "days"
    assert (
        await client.post(
            "/api/v1/staff/tokens", json={"name": "script", "days": 30}, headers=bearer(token)
        )
    ).status_code == 201
