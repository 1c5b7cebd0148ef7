"""Leases: a dead worker's letters come back to the queue (or are cancelled, if their citizens
cancelled them meanwhile); live leases are left alone."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery.worker import Worker
from app.letters import service as letters_service
from app.letters.models import Letter, LetterStatus
from tests.delivery.conftest import SmtpServer, as_a_request, letters
from tests.factories import create_letter


async def test_an_expired_lease_returns_the_letter_to_the_queue(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    letter = await create_letter(session, settings=delivery_settings)
    fresh = await create_letter(session, settings=delivery_settings)
    await session.commit()
    past = utcnow() - dt.timedelta(seconds=1)
    future = utcnow() + dt.timedelta(minutes=5)
    async with sessionmaker() as s:
        for letter_id, until in ((letter.id, past), (fresh.id, future)):
            await s.execute(
                update(Letter)
                .where(Letter.id == letter_id)
                .values(status=LetterStatus.sending, lease_owner="dead", lease_expires_at=until)
            )
        await s.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        summary = await worker.run(once=True)
    finally:
        await worker.close()
    assert summary.requeued == 1
    rows = {r.id: r for r in await letters(sessionmaker)}
    assert rows[letter.id].status == LetterStatus.sent
    # A live lease (another worker is sending it) is left alone.
    assert rows[fresh.id].status == LetterStatus.sending
    assert smtp_server.message_ids() == [letter.message_id]


async def test_a_cancelled_letter_stranded_by_a_dead_worker_is_cancelled_not_requeued(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    letter = await create_letter(session, settings=delivery_settings)
    letter.status = LetterStatus.sending
    letter.lease_owner = "dead"
    letter.lease_expires_at = utcnow() + dt.timedelta(seconds=0.2)
    await session.commit()
    async with sessionmaker() as s:
        await as_a_request(s)
        assert await letters_service.cancel_letters(s, letter_ids=[letter.id]) == 0
        await s.commit()
    await asyncio.sleep(0.3)
    worker = Worker(delivery_settings, engine=engine)
    try:
        summary = await worker.run(once=True)
    finally:
        await worker.close()
    assert summary.requeued == 0
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.cancelled
    assert smtp_server.received == []
