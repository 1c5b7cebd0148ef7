"""The database layer: SQLite pragmas, foreign keys on both databases, UTC timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

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
