"""Versions withdrawn or cancelled, and letters cancelled, while a worker has them on the wire."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.delivery import service as delivery_service
from app.delivery.models import SendPause
from app.delivery.worker import Worker
from app.letters import service as letters_service
from app.letters.models import Letter, LetterStatus
from tests.delivery.conftest import SmtpServer, as_a_request, drain, letters
from tests.factories import create_letter


async def test_a_version_withdrawn_while_on_the_wire_is_held_not_retried(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: ("sleep", 0.4, "451 4.7.1 try later")
    await create_letter(session, settings=delivery_settings, appeal_version_id=5)
    await session.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        run = asyncio.create_task(worker.run(once=True))
        while not smtp_server.received:
            await asyncio.sleep(0.01)
        # The lawyers withdraw the version while the letter is on the wire.
        async with sessionmaker() as s:
            await as_a_request(s)
            assert await letters_service.hold_version_letters(s, appeal_version_id=5) == 0
            await s.commit()
        await run
    finally:
        await worker.close()
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.held
    assert row.last_error == "451 4.7.1 try later"

    async with sessionmaker() as s:
        await as_a_request(s)
        assert await letters_service.release_version_letters(s, appeal_version_id=5) == 1
        await s.commit()
    smtp_server.behaviour = None
    await drain(delivery_settings, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.sent


async def test_a_cancelled_version_is_never_claimed_again(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    letter = await create_letter(session, settings=delivery_settings, appeal_version_id=6)
    await session.commit()
    async with sessionmaker() as s:
        await as_a_request(s)
        assert await letters_service.cancel_version_letters(s, appeal_version_id=6) == 1
        # A straggler (say, requeued after a worker died) must still not go out.
        await s.execute(
            update(Letter).where(Letter.id == letter.id).values(status=LetterStatus.queued)
        )
        await s.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        await worker.run(once=True)
    finally:
        await worker.close()
    assert smtp_server.received == []


async def test_a_letter_cancelled_while_on_the_wire_is_not_retried(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: ("sleep", 0.4, "451 4.7.1 try later")
    letter = await create_letter(session, settings=delivery_settings)
    await session.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        run = asyncio.create_task(worker.run(once=True))
        while not smtp_server.received:
            await asyncio.sleep(0.01)
        async with sessionmaker() as s:
            await as_a_request(s)
            assert await letters_service.cancel_letters(s, letter_ids=[letter.id]) == 0
            await s.commit()
        await run
    finally:
        await worker.close()
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.cancelled
    assert row.finished_at is not None
    async with sessionmaker() as s:
        assert list(await s.scalars(select(SendPause))) == []  # the request is done with


async def test_a_cancellation_that_arrives_just_after_the_record_still_applies(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    # The citizen's request was written while the letter was on the wire; the worker recorded
    # it as deferred before the request was committed.
    letter = await create_letter(session, settings=delivery_settings)
    letter.status = LetterStatus.deferred
    await session.commit()
    async with sessionmaker() as s:
        await delivery_service.stop_letters(s, letter_ids=[letter.id])
        await s.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        await worker.run(once=True)
    finally:
        await worker.close()
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.cancelled
    assert smtp_server.received == []
    async with sessionmaker() as s:
        assert list(await s.scalars(select(SendPause))) == []
