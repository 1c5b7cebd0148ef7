"""Signing in and out: login, sessions and their cookies, CSRF, throttling, over real HTTP through
the ASGI app."""

from __future__ import annotations

import re
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.config import Settings
from app.staff.models import AuditEntry, Role, StaffMember, StaffSession
from app.staff.web import secure_cookies
from tests.factories import STAFF_PASSWORD, create_staff
from tests.staff.auth import csrf_from, login, login_ok


async def test_login_sets_a_safe_session_cookie(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    staff = await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    page = await client.get("/staff/login")
    for label in ('for="email"', 'for="password"', 'for="code"'):
        assert label in page.text
    response = await login(client, "ED@campaign.example.org ", STAFF_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("appeals_staff=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP here
    me = await client.get("/api/v1/staff/me")
    assert me.status_code == 200
    assert me.json()["id"] == staff.id
    # Only a hash of the token is stored.
    token = response.cookies["appeals_staff"]
    stored = (await session.scalars(select(StaffSession.token_hash))).all()
    assert stored
    assert token not in stored


async def test_cookie_is_secure_over_https(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="sec@campaign.example.org")
    await session.commit()
    client.base_url = httpx.URL("https://testserver")
    response = await login(client, "sec@campaign.example.org")
    assert response.status_code == 303
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("appeals_staff=")
    )
    assert "Secure" in cookie


async def test_wrong_password_is_refused_with_a_message(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    response = await login(client, "ed@campaign.example.org", "wrong password here")
    assert response.status_code == 401
    assert "Неверный адрес, пароль или код" in response.text
    assert "appeals_staff=" not in response.headers.get("set-cookie", "")
    assert (await client.get("/api/v1/staff/me")).status_code == 401


async def test_failed_logins_on_real_accounts_are_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    editor = await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    for email in ("ed@campaign.example.org", "nobody@campaign.example.org"):
        assert (await login(client, email, "wrong password here")).status_code == 401
    entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    # Only the attempt on the real account: an address typed for no account is not kept.
    assert [(e.action, e.object_id, e.after, e.staff_id) for e in entries] == [
        ("staff.login_failed", str(editor.id), {"reason": "password"}, None)
    ]
    assert entries[0].actor == "failed login"
    assert "wrong password" not in str(entries[0].after)


async def test_login_form_needs_its_csrf_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    await client.get("/staff/login")
    for token in ("", "forged"):
        response = await client.post(
            "/staff/login",
            data={
                "email": "ed@campaign.example.org",
                "password": STAFF_PASSWORD,
                "csrf_token": token,
            },
        )
        assert response.status_code == 403


async def test_anonymous_pages_redirect_to_login_and_api_says_401(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/staff/campaigns?x=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/staff/login?next=%2Fstaff%2Fcampaigns%3Fx%3D1"
    api = await client.get("/api/v1/staff/campaigns")
    assert api.status_code == 401
    assert api.json()["error"] == "unauthorized"
    posted = await client.post("/api/v1/staff/campaigns", json={})
    assert posted.status_code == 401


async def test_login_returns_to_a_safe_next_page_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    for target, expected in [
        ("/staff/review", "/staff/review"),
        ("//evil.example.com/x", "/staff"),
        ("https://evil.example.com", "/staff"),
    ]:
        client.cookies.clear()
        form = await client.get("/staff/login")
        response = await client.post(
            "/staff/login",
            data={
                "email": "ed@campaign.example.org",
                "password": STAFF_PASSWORD,
                "csrf_token": csrf_from(form.text),
                "next": target,
            },
        )
        assert response.headers["location"] == expected


async def test_state_changes_need_the_csrf_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "ed@campaign.example.org")
    form = {"slug": "water", "title": "Вода", "all_regions": "true"}
    assert (await client.post("/staff/campaigns", data=form)).status_code == 403
    bad = await client.post("/staff/campaigns", data={**form, "csrf_token": "0" * 64})
    assert bad.status_code == 403
    good = await client.post("/staff/campaigns", data={**form, "csrf_token": csrf})
    assert good.status_code == 303
    # The API, with the cookie: the header is required.
    body = {"slug": "air", "title": "Воздух"}
    assert (await client.post("/api/v1/staff/campaigns", json=body)).status_code == 403
    wrong = await client.post(
        "/api/v1/staff/campaigns", json=body, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403
    ok = await client.post("/api/v1/staff/campaigns", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    # Logout is a state change too.
    assert (await client.post("/staff/logout")).status_code == 403


async def test_logout_ends_the_session_for_good(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "ed@campaign.example.org")
    cookie = client.cookies["appeals_staff"]
    response = await client.post("/staff/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login"
    # Replaying the old cookie does not work.
    client.cookies.clear()
    client.cookies.set("appeals_staff", cookie)
    assert (await client.get("/api/v1/staff/me")).status_code == 401
    assert (await client.get("/staff")).status_code == 303


async def test_login_throttled_per_account(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    for _ in range(5):
        assert (
            await login(client, "ed@campaign.example.org", "wrong-password!")
        ).status_code == 401
    # Even the right password is refused now, with a clear message.
    response = await login(client, "ed@campaign.example.org")
    assert response.status_code == 429
    assert "Слишком много неудачных попыток входа" in response.text
    assert re.search(r"Подождите \d+ мин\.", response.text)


async def test_login_throttled_per_client_address(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    for n in range(20):
        response = await login(client, f"nobody{n}@campaign.example.org", "wrong-password!")
        assert response.status_code == 401
    response = await login(client, "ed@campaign.example.org")
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("body", "statuses"),
    [
        (b"email=a%FF%FE&password=x&csrf_token=y", (403, 422)),
        (b"email=" + b"a" * 100_000, (413,)),  # over the body limit (app.body_limit)
    ],
)
async def test_hostile_login_input_is_refused_cleanly(
    client: httpx.AsyncClient, body: bytes, statuses: tuple[int, ...]
) -> None:
    await client.get("/staff/login")
    response = await client.post(
        "/staff/login", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code in statuses


async def test_login_and_logout_are_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    staff = await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "ed@campaign.example.org")
    await client.post("/staff/logout", data={"csrf_token": csrf})
    actions = (
        await session.scalars(
            select(AuditEntry.action).where(AuditEntry.staff_id == staff.id).order_by(AuditEntry.id)
        )
    ).all()
    assert actions == ["staff.login", "staff.logout"]
    assert (await session.get(StaffMember, staff.id)) is not None


@pytest.mark.parametrize(
    ("environment", "configured", "scheme", "expected"),
    [
        ("development", None, "http", False),
        ("development", None, "https", True),
        ("production", None, "http", True),  # behind a TLS-terminating proxy
        ("production", False, "http", False),
        ("test", True, "http", True),
    ],
)
def test_when_cookies_are_secure(
    environment: str, configured: bool | None, scheme: str, expected: bool
) -> None:
    settings = Settings(
        environment=environment, secret_key="k" * 40, cookie_secure=configured, _env_file=None
    )
    app = SimpleNamespace(state=SimpleNamespace(settings=settings))
    request = Request(
        {
            "type": "http",
            "scheme": scheme,
            "path": "/",
            "headers": [],
            "app": app,
            "server": ("testserver", 443),
            "query_string": b"",
            "method": "GET",
        }
    )
    assert secure_cookies(request) is expected
