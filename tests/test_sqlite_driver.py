"""SQLite engines run on app.sqlite_driver: one trip to aiosqlite's thread per statement, with
everything SQLAlchemy reads of a DB-API cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.sqlite_driver import OneTripCursor

metadata = MetaData()
item = Table(
    "item",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), unique=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with made.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield made
    await made.dispose()


async def test_the_engine_uses_the_one_trip_cursor(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert raw.dbapi_connection is not None
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)


async def test_rows_counts_and_ids_come_back(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await connection.execute(insert(item).values(name="a"))
        assert first.inserted_primary_key == (1,)  # lastrowid
        many = await connection.execute(insert(item), [{"name": "b"}, {"name": "c"}])
        assert many.rowcount == 2
        returned = await connection.execute(
            insert(item).returning(item.c.id, item.c.name), [{"name": "d"}, {"name": "e"}]
        )
        assert sorted(returned.all()) == [(4, "d"), (5, "e")]
        changed = await connection.execute(
            update(item).where(item.c.name.in_(["a", "b", "zz"])).values(name=item.c.name + "!")
        )
        assert changed.rowcount == 2
        result = await connection.execute(select(item.c.name).order_by(item.c.id))
        assert result.fetchone() == ("a!",)
        assert result.fetchmany(2) == [("b!",), ("c",)]
        assert result.scalars().all() == ["d", "e"]
        assert (await connection.execute(text("SELECT 1 WHERE 0"))).first() is None


async def test_errors_keep_their_sqlalchemy_types(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(item).values(name="same"))
        with pytest.raises(IntegrityError):
            await connection.execute(insert(item).values(name="same"))
        await connection.rollback()
        with pytest.raises(OperationalError, match="no such table"):
            await connection.execute(text("SELECT * FROM missing"))


async def test_streamed_results_still_work(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(item), [{"name": f"n{i}"} for i in range(250)])
    async with engine.connect() as connection:
        stream = await connection.stream(select(item.c.id).order_by(item.c.id))
        seen = [row[0] async for row in stream]
    assert seen == list(range(1, 251))
