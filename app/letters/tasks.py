"""The citizen flow's periodic work inside a web process: deleting expired submissions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.letters import flow

logger = logging.getLogger("appeals.letters")


async def purge_once(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    async with sessionmaker() as session:
        deleted = await flow.purge(session, settings=settings)
        await session.commit()
    return deleted


async def _purge_loop(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    while True:
        try:
            deleted = await purge_once(sessionmaker, settings)
            if deleted:
                logger.info("deleted %d expired or old submissions", deleted)
        except Exception as exc:  # the database is busy or down: try again next time
            logger.warning("submission purge failed: %s", type(exc).__name__)
        await asyncio.sleep(settings.purge_interval_seconds)


@contextlib.asynccontextmanager
async def periodic_purge(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> AsyncIterator[None]:
    task = asyncio.create_task(_purge_loop(sessionmaker, settings), name="appeals-submission-purge")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
