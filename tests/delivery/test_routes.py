"""/metrics, the local sink and its staff page, and the embedded default (sink + worker)."""

from __future__ import annotations

import asyncio
import time

import aiosmtplib
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery.models import SinkMessage
from app.delivery.sink import start_sink
from app.letters.models import FailureClass, LetterStatus
from app.main import create_app
from app.staff.models import Role
from tests.delivery.conftest import letters
from tests.factories import create_letter, create_staff, message_of
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
