"""Concurrency slots: held per domain while its letters are on the wire, given back after."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.delivery.models import SendSlot
from app.letters.models import LetterStatus
from tests.delivery.conftest import SmtpServer, drain, letters, relay_settings
from tests.factories import create_deputy, create_letter


async def test_slots_are_given_back_once_each_domain_is_recorded(
    settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    # Small batches over three domains: the worker moves from domain to domain while the
    # previous batch is recorded (at the same time as the next claim, on PostgreSQL).
    worker_settings = relay_settings(settings, smtp_server.port, worker_batch_size=4)
    for i in range(3):
        deputy = await create_deputy(session, email=f"deputy@duma{i}.example.org")
        for _ in range(9):
            await create_letter(session, settings=worker_settings, deputy=deputy)
    await session.commit()

    worker = await drain(worker_settings, engine, sessionmaker)

    assert {r.status for r in await letters(sessionmaker)} == {LetterStatus.sent}
    assert worker.summary.sent == 27
    async with sessionmaker() as check:
        held = await check.scalar(select(func.count()).select_from(SendSlot))
    assert held == 0
