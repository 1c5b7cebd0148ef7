"""Logging in through the real login form, for tests of any domain."""

from __future__ import annotations

import re

import httpx

from tests.factories import STAFF_PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def login(
    client: httpx.AsyncClient, email: str, password: str = STAFF_PASSWORD, code: str = ""
) -> httpx.Response:
    """Submit the login form as a browser would (fresh cookies); returns the response."""
    client.cookies.clear()
    form = await client.get("/staff/login")
    assert form.status_code == 200
    return await client.post(
        "/staff/login",
        data={
            "email": email,
            "password": password,
            "code": code,
            "csrf_token": csrf_from(form.text),
        },
    )


async def login_ok(client: httpx.AsyncClient, email: str, password: str = STAFF_PASSWORD) -> str:
    """Log in and return the session's CSRF token (read from a staff page)."""
    response = await login(client, email, password)
    assert response.status_code == 303, response.text
    home = await client.get("/staff")
    assert home.status_code == 200
    return csrf_from(home.text)
