"""The confirmation outbox: the submission stores the e-mail in its transaction; the delivery
worker's sender sends it over real SMTP on loopback and deletes it; failures are retried a few
times and never logged with the address or the links."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.letters import mailer
from app.letters.submissions import ConfirmationEmail
from app.main import create_app
from tests.e2e.citizen_server import free_port
from tests.letters.conftest import Inbox, form, make_world


async def _outbox(session: AsyncSession) -> list[ConfirmationEmail]:
    await session.rollback()  # a fresh snapshot: the sender wrote in its own sessions
    return list(await session.scalars(select(ConfirmationEmail).order_by(ConfirmationEmail.id)))


async def test_submission_stores_the_email_and_the_sender_sends_then_deletes_it(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    response = await citizen.post("/campaigns/hospital/RU-TVE/submit", data=form(world))
    assert response.status_code == 303
    (row,) = await _outbox(session)
    assert row.to_address == "maria@example.org"
    assert "/confirm/" in row.body
    assert inbox.messages == []  # the web request sent nothing itself

    sent = await mailer.drain(citizen_app.state.settings, citizen_app.state.sessionmaker)
    assert sent == 1
    assert await _outbox(session) == []  # deleted once sent: the links are kept no longer
    (message,) = inbox.messages
    assert message["To"] == "maria@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    links = inbox.links()
    assert set(links) == {"confirm", "status"}
    # The link works.
    confirmed = await citizen.post("/api/v1/confirmations", json={"token": links["confirm"]})
    assert confirmed.status_code == 201


async def test_a_refused_submission_stores_no_email(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    response = await citizen.post(
        "/campaigns/hospital/RU-TVE/submit", data=form(world, consent=None)
    )
    assert response.status_code == 422
    assert await _outbox(session) == []


async def test_relay_down_retries_then_gives_up_without_logging_personal_data(
    citizen: httpx.AsyncClient,
    citizen_settings: Settings,
    citizen_app: FastAPI,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = await make_world(session)
    await citizen.post("/campaigns/hospital/RU-TVE/submit", data=form(world))
    down = citizen_settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout": 2.0})
    sender = mailer.ConfirmationSender(down, citizen_app.state.sessionmaker)
    with caplog.at_level(logging.DEBUG):
        assert await sender.send_due() == 0
        (row,) = await _outbox(session)
        assert row.attempts == 1
        assert row.claimed_until is None
        assert row.next_attempt_at > utcnow() + dt.timedelta(seconds=20)
        assert await sender.send_due() == 0  # not due yet: nothing tried
        assert (await _outbox(session))[0].attempts == 1
        for _ in range(mailer.MAX_ATTEMPTS - 1):
            await session.execute(update(ConfirmationEmail).values(next_attempt_at=utcnow()))
            await session.commit()
            await sender.send_due()
    await sender.aclose()
    assert await _outbox(session) == []  # given up: deleted
    logged = caplog.text
    assert "maria@example.org" not in logged
    assert "/confirm/" not in logged
    assert "given up" in logged


async def test_an_expired_email_is_dropped_unsent(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    await citizen.post("/campaigns/hospital/RU-TVE/submit", data=form(world))
    await session.execute(
        update(ConfirmationEmail).values(expires_at=utcnow() - dt.timedelta(seconds=1))
    )
    await session.commit()
    assert await mailer.drain(citizen_app.state.settings, citizen_app.state.sessionmaker) == 0
    assert inbox.messages == []
    assert await session.scalar(select(func.count(ConfirmationEmail.id))) == 0


async def test_two_senders_send_each_email_once(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    for n in range(12):
        response = await citizen.post(
            "/campaigns/hospital/RU-TVE/submit", data=form(world, email=f"m{n}@example.org")
        )
        assert response.status_code == 303
    settings, sessionmaker = citizen_app.state.settings, citizen_app.state.sessionmaker
    counts = await asyncio.gather(
        mailer.drain(settings, sessionmaker), mailer.drain(settings, sessionmaker)
    )
    assert sum(counts) == 12
    assert sorted(str(m["To"]) for m in inbox.messages) == sorted(
        f"m{n}@example.org" for n in range(12)
    )


async def test_the_embedded_worker_sends_at_once_when_woken(
    citizen_settings: Settings, inbox: Inbox, session: AsyncSession, sessionmaker: object
) -> None:
    world = await make_world(session)
    # A long poll interval: only the wake-up can make the e-mail leave within the second.
    settings = citizen_settings.model_copy(
        update={"embedded_worker": True, "worker_poll_seconds": 60.0}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await asyncio.sleep(0.2)  # the sender's first pass (an empty outbox) is done
            response = await client.post("/campaigns/hospital/RU-TVE/submit", data=form(world))
            assert response.status_code == 303
            for _ in range(100):
                if inbox.messages:
                    break
                await asyncio.sleep(0.01)
    assert len(inbox.messages) == 1
    assert await _outbox(session) == []
