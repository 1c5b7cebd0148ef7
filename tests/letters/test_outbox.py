"""The confirmation outbox: the submission stores the e-mail in its transaction; the delivery
worker's sender sends it over real SMTP on loopback and deletes it; failures are retried a few
times and never logged with the address or the links."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import mail
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


def _reference(*, settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    """The message as the email package builds it: what confirmation_bytes must equal."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.mail_from
    message["To"] = mail.check_address(to, field="email")
    message["Subject"] = mail.clean_text(subject, limit=200)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=mail.address_domain(settings.mail_from))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8")
    return message


@pytest.mark.parametrize(
    ("to", "subject", "body"),
    [
        ("maria@example.org", "Подтвердите письма депутатам", "Текст\nhttp://x/confirm/abc\n"),
        ("a.b+c@example.org", "Confirm your letters to deputies", "Text only ASCII\n"),
        ("x@example.org", 'Очень длинная тема, с запятыми, «кавычками» и "quotes" ' * 4, "Б\n"),
        ("x@example.org", "Тема\r\nBcc: victim@example.org", "Line one\r\nline two\rthree\n"),
        ("x@example.org", "=?utf-8?q?fake?= subject", "Строка " * 300 + "\n"),
    ],
)
def test_confirmation_bytes_parse_as_the_email_message(to: str, subject: str, body: str) -> None:
    settings = Settings(environment="test", secret_key="t" * 40, mail_from="appeals@example.org")
    reference = _reference(settings=settings, to=to, subject=subject, body=body)
    fast = message_from_bytes(
        mailer.confirmation_bytes(
            settings=settings,
            to=to,
            subject=subject,
            body=body,
            date=utcnow(),
            message_id="<m@example.org>",
        ),
        policy=policy.default,
    )
    slow = message_from_bytes(bytes(reference), policy=policy.default)
    assert isinstance(fast, EmailMessage)
    assert isinstance(slow, EmailMessage)
    for name in ("From", "To", "Auto-Submitted", "MIME-Version"):
        assert str(fast[name]) == str(slow[name]), name
    cleaned = mail.clean_text(subject, limit=200)
    assert str(fast["Subject"]) == cleaned
    if "=?" not in subject:
        assert str(slow["Subject"]) == cleaned
    # (EmailMessage writes a literal "=?...?=" as is, which then reads as an encoded word; the
    # fast builder encodes it, so the citizen sees the text that was given.)
    assert "Bcc" not in fast
    assert fast.get_content_type() == slow.get_content_type() == "text/plain"
    assert fast.get_content_charset() == "utf-8"

    def text(message: EmailMessage) -> str:
        return str(message.get_content()).replace("\r\n", "\n")

    assert text(fast) == text(slow)
