"""Statistics fixtures: counter tables emptied and the public cache forgotten before each test.

The shared teardown deletes letters table by table; on SQLite the delete trigger then counts the
deletions into counter tables that may already have been emptied, so each test starts clean here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.stats import consistency, public


@pytest.fixture(autouse=True)
async def _clean_counters(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[None]:
    async with sessionmaker() as session:
        for model in consistency.COUNTERS:
            await session.execute(delete(model))
        await session.commit()
    public.clear_public_cache()
    yield
    public.clear_public_cache()
