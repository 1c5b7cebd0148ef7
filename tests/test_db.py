"""The database layer: SQLite pragmas, foreign keys on both databases, UTC timestamps."""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings
from app.db import create_engine, engine_for
from app.deputies.models import Deputy
from tests.factories import create_deputy


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas only apply to SQLite")
    async with engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    session.add(
        Deputy(external_id="X-1", legislature_id=424242, surname="А", first_name="Б",
               position="Депутат", email="a@b.example.org")
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_timestamps_come_back_in_utc(session: AsyncSession) -> None:
    deputy = await create_deputy(session)
    await session.commit()
    session.expunge_all()
    stored = await session.get(Deputy, deputy.id)
    assert stored is not None
    assert stored.created_at.tzinfo == dt.UTC


async def test_deputies_are_never_deleted(session: AsyncSession) -> None:
    deputy = await create_deputy(session)
    await session.commit()
    await session.delete(deputy)
    with pytest.raises(ValueError, match="cannot be deleted"):
        await session.flush()


async def test_a_burst_within_the_pool_opens_no_connection_again(database_url: str) -> None:
    """Requests in flight up to the pool's size reuse the connections they opened: none is
    closed on return and opened again for the next burst (the settings size the pool)."""
    settings = Settings(
        environment="test", database_url=database_url, secret_key="t" * 40,
        database_pool_size=6, database_max_overflow=2,
    )  # fmt: skip
    engine = engine_for(settings)
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def _count(_connection: Any, _record: Any) -> None:
        nonlocal opened
        opened += 1

    async def burst(size: int) -> None:
        async with AsyncExitStack() as stack:
            for _ in range(size):
                connection = await stack.enter_async_context(engine.connect())
                await connection.execute(text("SELECT 1"))

    try:
        await burst(6)
        await burst(6)
        assert opened == 6
        await burst(8)  # two over the pool: opened for the burst, closed after it
        await burst(8)
        assert opened == 10
        with pytest.raises(TimeoutError):  # the pool and its overflow are full
            async with asyncio.timeout(1):
                await burst(9)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
    ],
)
async def test_an_in_memory_sqlite_database_gets_no_pool_to_size(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
