"""Two-factor authentication by TOTP: enrolment, confirmation, codes at login and their replay."""

from __future__ import annotations

import time

import httpx
import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from app.staff.models import Role
from tests.factories import create_staff
from tests.staff.auth import login, login_ok


async def test_totp_second_factor(client: httpx.AsyncClient, session: AsyncSession) -> None:
    staff = await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "ed@campaign.example.org")
    assert (await client.post("/staff/account/totp", data={"csrf_token": csrf})).status_code == 303
    page = await client.get("/staff/account")
    await session.refresh(staff)
    assert staff.totp_secret
    assert staff.totp_secret in page.text
    totp = pyotp.TOTP(staff.totp_secret)
    wrong = await client.post(
        "/staff/account/totp/confirm",
        data={"csrf_token": csrf, "code": "000000" if totp.now() != "000000" else "111111"},
    )
    assert wrong.status_code == 422
    code = totp.now()
    confirmed = await client.post(
        "/staff/account/totp/confirm", data={"csrf_token": csrf, "code": code}
    )
    assert confirmed.status_code == 303
    # Without a code, or replaying the code just used, the login fails.
    assert (await login(client, "ed@campaign.example.org")).status_code == 401
    assert (await login(client, "ed@campaign.example.org", code=code)).status_code == 401
    # The next step's code works (valid one step ahead).
    next_code = totp.at(time.time() + totp.interval)
    assert (await login(client, "ed@campaign.example.org", code=next_code)).status_code == 303
