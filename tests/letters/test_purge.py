"""Expired, unconfirmed submissions are deleted; the others stay until the retention period."""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.letters.submissions import Submission
from app.letters.tasks import purge_once
from tests.letters.conftest import Inbox, api_body, mail_sent, make_world


async def test_purge_deletes_expired_submissions(
    citizen: httpx.AsyncClient,
    citizen_app: FastAPI,
    citizen_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(session)
    for email in ("a@example.org", "b@example.org"):
        response = await citizen.post(
            "/api/v1/campaigns/hospital/submissions", json=api_body(world, email=email)
        )
        assert response.status_code == 202
    await mail_sent(citizen_app)
    kept = inbox.links(0)
    assert (
        await citizen.post("/api/v1/confirmations", json={"token": kept["confirm"]})
    ).status_code == 201
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await session.execute(update(Submission).values(expires_at=past))
    await session.commit()
    assert await purge_once(sessionmaker, citizen_settings) == 1
    await session.rollback()
    assert await session.scalar(select(func.count(Submission.id))) == 1
    # The confirmed one still opens its status page.
    assert (await citizen.get(f"/api/v1/status/{kept['status']}")).status_code == 200
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=citizen_settings.retention_days + 1)
    await session.execute(update(Submission).values(created_at=old))
    await session.commit()
    assert await purge_once(sessionmaker, citizen_settings) == 1
    assert (await citizen.get(f"/api/v1/status/{kept['status']}")).status_code == 404
