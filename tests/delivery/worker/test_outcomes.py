"""The worker against real SMTP servers on loopback: each reply class, drops, slowness, outages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery.worker.outcomes import UNKNOWN_TWICE
from app.letters.models import FailureClass, LetterStatus
from tests.delivery.conftest import SmtpServer, drain, letters, relay_settings
from tests.factories import create_deputy, create_letter


async def _queue(session: AsyncSession, settings: Settings, n: int) -> list[int]:
    deputy = await create_deputy(session, email="deputy@duma.example.org")
    ids = [(await create_letter(session, settings=settings, deputy=deputy)).id for _ in range(n)]
    await session.commit()
    return ids


async def test_success_sends_each_letter_once(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    await _queue(session, delivery_settings, 30)
    worker = await drain(delivery_settings, engine, sessionmaker)
    rows = await letters(sessionmaker)
    assert {r.status for r in rows} == {LetterStatus.sent}
    assert sorted(smtp_server.message_ids()) == sorted(r.message_id for r in rows)
    assert all(r.attempts == 1 and r.final_reply == "250 2.0.0 Ok: queued" for r in rows)
    assert all(r.sent_at is not None and r.finished_at is not None for r in rows)
    assert all(r.lease_owner is None for r in rows)
    assert worker.summary.sent == 30
    # Connections are persistent: a pool of 2 serves 30 messages.
    assert smtp_server.connections <= 2
    assert smtp_server.received[0].rcpt == ["deputy@duma.example.org"]


async def test_4xx_defers_then_succeeds(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: "451 4.7.1 greylisted, try later" if n <= 3 else "250 ok"
    await _queue(session, delivery_settings, 3)
    await drain(delivery_settings, engine, sessionmaker)
    rows = await letters(sessionmaker)
    assert [r.status for r in rows] == [LetterStatus.sent] * 3
    assert [r.attempts for r in rows] == [2, 2, 2]
    assert all(r.final_reply == "250 ok" and r.last_error is None for r in rows)
    # Each letter reached the server twice under the same Message-ID.
    assert sorted(smtp_server.message_ids()) == sorted([r.message_id for r in rows] * 2)


async def test_5xx_fails_at_once_with_the_reply(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: "550 5.1.1 mailbox unavailable"
    await _queue(session, delivery_settings, 2)
    await drain(delivery_settings, engine, sessionmaker)
    rows = await letters(sessionmaker)
    assert [r.status for r in rows] == [LetterStatus.failed] * 2
    assert all(r.attempts == 1 for r in rows)
    assert rows[0].final_reply == "550 5.1.1 mailbox unavailable"
    assert rows[0].failure_class == FailureClass.permanent
    assert len(smtp_server.received) == 2


async def test_connection_dropped_after_data_is_sent_again_with_same_message_id(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: "drop" if n == 1 else "250 ok"
    await _queue(session, delivery_settings, 1)
    await drain(delivery_settings, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.sent
    assert row.attempts == 2
    # The duplicate window: the server holds the same message twice, one Message-ID.
    assert smtp_server.message_ids() == [row.message_id, row.message_id]


async def test_server_slower_than_the_timeout_defers(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    settings = relay_settings(delivery_settings, smtp_server.port, smtp_timeout=0.3)
    smtp_server.behaviour = lambda n, _: ("sleep", 1.0, "250 late") if n == 1 else "250 ok"
    await _queue(session, settings, 1)
    worker = await drain(settings, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.sent
    assert row.attempts == 2
    assert worker.summary.by_class == {"unknown": 1}  # the timeout hit after the final dot


async def test_relay_down_then_up_delivers_everything(
    delivery_settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    down = SmtpServer()
    await down.start()
    port = down.port
    await down.stop()  # nothing listens on the port now
    settings = relay_settings(delivery_settings, port, breaker_threshold=3)
    await _queue(session, settings, 20)
    worker_run = drain(settings, engine, sessionmaker, until=lambda: _any_deferred(sessionmaker))
    await worker_run
    rows = await letters(sessionmaker)
    assert any(r.failure_class == FailureClass.connection for r in rows)
    assert all(r.status in (LetterStatus.deferred, LetterStatus.queued) for r in rows)

    up = SmtpServer()
    await up.start(port=port)
    try:
        await drain(settings, engine, sessionmaker)
    finally:
        await up.stop()
    rows = await letters(sessionmaker)
    assert {r.status for r in rows} == {LetterStatus.sent}
    assert sorted(up.message_ids()) == sorted(r.message_id for r in rows)


async def _any_deferred(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    return any(r.status == LetterStatus.deferred for r in await letters(sessionmaker))


async def test_gives_up_after_the_give_up_age(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    settings = relay_settings(delivery_settings, smtp_server.port, give_up_seconds=0.3)
    smtp_server.behaviour = lambda n, _: "452 4.2.2 mailbox full"
    await _queue(session, settings, 1)
    await drain(settings, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.failed
    assert row.failure_class == FailureClass.expired
    assert row.final_reply == "452 4.2.2 mailbox full"
    assert row.attempts >= 2


async def test_an_unknown_outcome_is_retried_only_after_the_longest_back_off(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    # A 4xx would come back after 0.05 s; a lost reply after the final dot waits the longest.
    settings = relay_settings(delivery_settings, smtp_server.port, retry_max_seconds=60.0)
    smtp_server.behaviour = lambda n, _: "drop"
    await _queue(session, settings, 1)
    before = utcnow()
    await drain(settings, engine, sessionmaker, until=lambda: _none_sending(sessionmaker))
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.deferred
    assert row.failure_class == FailureClass.unknown
    assert row.next_attempt_at - before >= dt.timedelta(seconds=0.8 * 60)
    assert len(smtp_server.received) == 1


async def test_a_second_unknown_outcome_in_a_row_fails_the_letter(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: "drop"  # every time: the relay may hold it each time
    await _queue(session, delivery_settings, 1)
    await drain(delivery_settings, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.failed
    assert row.failure_class == FailureClass.unknown
    assert row.last_error is not None
    assert row.last_error.endswith(UNKNOWN_TWICE)
    assert row.attempts == 2
    assert smtp_server.message_ids() == [row.message_id, row.message_id]


async def _none_sending(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    return all(r.status != LetterStatus.sending for r in await letters(sessionmaker))
