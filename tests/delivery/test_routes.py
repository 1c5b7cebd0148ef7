"""/metrics, the local sink and its staff page, and the embedded default (sink + worker)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email import message_from_bytes, policy

import aiosmtplib
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery.models import SinkMessage
from app.delivery.sink import redact_links, start_sink
from app.letters.models import FailureClass, LetterStatus
from app.main import create_app
from app.staff.models import Role
from tests.delivery.conftest import letters
from tests.factories import create_letter, create_staff, message_of
from tests.letters.conftest import LINK, form, make_world
from tests.staff.auth import login_ok


async def test_metrics_in_prometheus_format(
    client: httpx.AsyncClient, settings: Settings, session: AsyncSession
) -> None:
    plan = [
        (LetterStatus.sent, None),
        (LetterStatus.sent, None),
        (LetterStatus.failed, FailureClass.permanent),
        (LetterStatus.deferred, FailureClass.timeout),
        (LetterStatus.queued, None),
    ]
    for status, failure in plan:
        letter = await create_letter(session, settings=settings)
        letter.status = status
        letter.failure_class = failure
        if status == LetterStatus.sent:
            letter.sent_at = utcnow()
    await session.commit()

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("appeals_letters", (("status", "sent"),))] == 2
    assert samples[("appeals_letters", (("status", "queued"),))] == 1
    assert samples[("appeals_letters", (("status", "held"),))] == 0
    assert samples[("appeals_letters_sent_total", ())] == 2
    assert samples[("appeals_sends_per_second", ())] == 2 / 60
    failures = (("class", "permanent"), ("status", "failed"))
    assert samples[("appeals_letter_failures", failures)] == 1
    assert samples[("appeals_letter_failures", (("class", "timeout"), ("status", "deferred")))] == 1
    age = samples[("appeals_queue_age_seconds", (("of", "oldest_unsent"),))]
    assert 0 <= age < 60
    assert samples[("appeals_queue_age_seconds", (("of", "oldest_due"),))] >= 0
    # Scraped twice, the same registry is never reused (no duplicate-metric errors).
    assert (await client.get("/metrics")).status_code == 200


async def test_sink_stores_messages_and_staff_read_them(
    client: httpx.AsyncClient,
    settings: Settings,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    letter = await create_letter(
        session, settings=settings, subject="Обращение о больнице", body="Прошу сохранить."
    )
    await session.commit()
    server = await start_sink(sessionmaker, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        _, reply = await smtp.sendmail(
            "appeals@localhost", [letter.recipient_email], message_of(letter)
        )
        await smtp.quit()
    finally:
        server.close()
        await server.wait_closed()
    assert "local sink" in reply

    editor = await create_staff(session, Role.editor)
    await session.commit()
    await login_ok(client, editor.email)
    page = await client.get("/staff/sink")
    assert page.status_code == 200
    assert "Обращение о больнице" in page.text
    assert letter.recipient_email in page.text
    async with sessionmaker() as s:
        stored = await s.scalar(select(SinkMessage))
    assert stored is not None
    assert stored.data == message_of(letter)
    assert stored.message_id == letter.message_id

    one = await client.get(f"/staff/sink/{stored.id}")
    assert one.status_code == 200
    assert "Прошу сохранить." in one.text
    assert "Мария Петрова" in one.text  # the decoded From
    assert (await client.get("/staff/sink/999999")).status_code == 404


async def test_sink_page_is_for_staff_who_write_and_vet(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    anonymous = await client.get("/staff/sink")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/staff/login")
    analyst = await create_staff(session, Role.analyst)
    lawyer = await create_staff(session, Role.lawyer)
    await session.commit()
    await login_ok(client, analyst.email)
    assert (await client.get("/staff/sink")).status_code == 403
    await login_ok(client, lawyer.email)
    assert (await client.get("/staff/sink")).status_code == 200


async def test_embedded_service_delivers_to_the_local_sink(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    embedded = settings.model_copy(
        update={"embedded_worker": True, "sink_port": 0, "worker_poll_seconds": 0.05}
    )
    assert embedded.smtp_host is None  # no relay: nothing may leave the machine
    app = create_app(embedded)
    async with app.router.lifespan_context(app):
        async with sessionmaker() as s:
            letter = await create_letter(s, settings=embedded)
            await s.commit()
        deadline = time.monotonic() + 10
        while (await letters(sessionmaker))[0].status != LetterStatus.sent:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    async with sessionmaker() as s:
        stored = list(await s.scalars(select(SinkMessage)))
    assert [m.message_id for m in stored] == [letter.message_id]
    assert (await letters(sessionmaker))[0].final_reply == "250 2.0.0 stored in the local sink"


def test_development_defaults_embed_the_worker_and_never_a_relay() -> None:
    settings = Settings(_env_file=None)
    assert settings.environment == "development"
    assert settings.embedded_worker is True
    assert settings.smtp_host is None
    assert not settings.relay_configured
    assert Settings(environment="test", _env_file=None).embedded_worker is False


def test_links_are_removed_but_their_first_word_kept() -> None:
    text = (
        "Open http://127.0.0.1:8000/confirm/abc.DEF-123_x within 24 hours:\n"
        "status: https://appeals.example.org/status/Zz9?x=1#y, site: https://appeals.example.org/"
    )
    redacted, links = redact_links(text)
    assert redacted == (
        "Open http://127.0.0.1:8000/confirm/[removed] within 24 hours:\n"
        "status: https://appeals.example.org/status/[removed] site: https://appeals.example.org/"
    )
    assert links == [
        "http://127.0.0.1:8000/confirm/abc.DEF-123_x",
        "https://appeals.example.org/status/Zz9?x=1#y,",
    ]


async def _sink_messages(sessionmaker: async_sessionmaker[AsyncSession]) -> list[SinkMessage]:
    async with sessionmaker() as s:
        return list(await s.scalars(select(SinkMessage).order_by(SinkMessage.id)))


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 15
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_the_sink_keeps_no_citizens_links_and_forgets_an_erased_citizen(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The newcomer's flow in development: sign, read the links in the service's log (the sink
    has them removed), confirm, the letters arrive in the sink whole, erase: the citizen's
    messages leave the sink, another citizen's stay."""
    development = settings.model_copy(
        update={
            "environment": "development",
            "embedded_worker": True,
            "sink_port": 0,
            "worker_poll_seconds": 0.05,
            "public_url": "",
            "limit_submit_per_address": "1000/minute",
            "limit_links_per_address": "1000/minute",
        }
    )
    async with sessionmaker() as s:
        world = await make_world(s, deputies=2)
        editor = await create_staff(s, Role.editor)
        await s.commit()
    app = create_app(development)
    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.WARNING, logger="appeals.delivery.sink"):
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            for email in ("maria@example.org", "ivan@example.org"):
                submitted = await client.post(
                    "/campaigns/hospital/RU-TVE/submit", data=form(world, email=email)
                )
                assert submitted.status_code == 303

            async def two_confirmations() -> bool:
                return len(await _sink_messages(sessionmaker)) == 2

            await _until(two_confirmations, "the confirmation e-mails never reached the sink")
            stored = await _sink_messages(sessionmaker)
            logged = [r.getMessage() for r in caplog.records if "development:" in r.getMessage()]
            assert len(logged) == 2
            links = [dict(LINK.findall(line)) for line in logged]
            assert "maria" not in logged[0]  # the log line names no one
            for message, found in zip(stored, links, strict=True):
                assert set(found) == {"confirm", "status"}
                kept = message_from_bytes(message.data, policy=policy.default)
                body = kept.get_body(("plain",))
                assert body is not None
                text = body.get_content()
                assert "http://127.0.0.1:8000/confirm/[removed]" in text
                assert "http://127.0.0.1:8000/status/[removed]" in text
                assert found["confirm"] not in text
                assert found["status"] not in text
                assert found["status"] not in str(kept)

            await login_ok(client, editor.email)
            page = await client.get(f"/staff/sink/{stored[0].id}")
            assert page.status_code == 200
            assert "/confirm/[removed]" in page.text
            assert links[0]["confirm"] not in page.text
            assert links[0]["status"] not in page.text

            # The developer confirms both test submissions with the links from the log.
            for found in links:
                confirmed = await client.post(f"/confirm/{found['confirm']}")
                assert confirmed.status_code == 200, confirmed.text

            async def all_letters() -> bool:
                return len(await _sink_messages(sessionmaker)) == 2 + 2 * 2

            await _until(all_letters, "the letters never reached the sink")
            to_deputies = [m for m in await _sink_messages(sessionmaker) if m.id > stored[1].id]
            for m in to_deputies:  # stored whole, as they were sent
                letter = message_from_bytes(m.data, policy=policy.default).get_body(("plain",))
                assert letter is not None
                assert "Прошу сохранить больницу" in letter.get_content()

            erased = await client.post(f"/status/{links[0]['status']}/erase", data={"sure": "yes"})
            assert erased.status_code == 303
            left = await _sink_messages(sessionmaker)
    assert len(left) == 3  # Ivan's confirmation and his two letters
    assert all("maria@example.org" not in m.rcpt_to for m in left)
    for m in left:
        parsed = message_from_bytes(m.data, policy=policy.default)
        assert "maria@example.org" not in str(parsed), m.id
