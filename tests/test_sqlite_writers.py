"""Concurrent SQLite writers wait their turn for the write lock (SQLite's busy timeout, from
db.begin_write's BEGIN IMMEDIATE) and never fail with "database is locked": each engine here
stands for a process, on a real database file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import begin_write, create_engine, create_sessionmaker
from tests.databases import sqlite_write_lock_is_free


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    path = tmp_path / "writers.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (who TEXT)"))
    await engine.dispose()
    return path


@pytest.fixture
async def engines(database: Path) -> AsyncIterator[list[AsyncEngine]]:
    made = [create_engine(f"sqlite+aiosqlite:///{database}") for _ in range(3)]
    yield made
    for engine in made:
        await engine.dispose()


async def _write(session: AsyncSession, who: str) -> None:
    await begin_write(session)
    await session.execute(text("INSERT INTO t (who) VALUES (:who)"), {"who": who})


async def _rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(text("SELECT who FROM t ORDER BY rowid"))).scalars())


async def test_a_writer_waits_its_turn_and_goes_when_the_one_before_commits(
    engines: list[AsyncEngine], database: Path
) -> None:
    first, second, _ = engines
    async with create_sessionmaker(first)() as holder, create_sessionmaker(second)() as waiter:
        await _write(holder, "first")
        assert not sqlite_write_lock_is_free(database)
        task = asyncio.create_task(_write(waiter, "second"))
        await asyncio.sleep(0.3)
        assert not task.done()  # waiting behind the holder, not failed
        await holder.commit()
        await asyncio.wait_for(task, 5)
        assert not sqlite_write_lock_is_free(database)  # now the second holds it
        await waiter.commit()
    assert sqlite_write_lock_is_free(database)
    assert await _rows(first) == ["first", "second"]


async def test_many_concurrent_writers_of_several_processes_all_commit(
    engines: list[AsyncEngine],
) -> None:
    async def read_then_write(engine: AsyncEngine, who: str) -> None:
        async with create_sessionmaker(engine)() as session:
            await begin_write(session)
            # A read first: in a deferred transaction its snapshot could not be upgraded to the
            # write lock once another process had written ("database is locked" at once).
            await session.execute(text("SELECT count(*) FROM t"))
            await session.execute(text("INSERT INTO t (who) VALUES (:who)"), {"who": who})
            await session.commit()

    writes = [
        read_then_write(engine, f"{n}-{i}") for n, engine in enumerate(engines) for i in range(15)
    ]
    await asyncio.wait_for(asyncio.gather(*writes), 60)
    assert sorted(await _rows(engines[0])) == sorted(
        f"{n}-{i}" for n in range(3) for i in range(15)
    )


async def test_rollback_and_close_let_the_lock_go(
    engines: list[AsyncEngine], database: Path
) -> None:
    async with create_sessionmaker(engines[0])() as session:
        await _write(session, "rolled back")
        assert not sqlite_write_lock_is_free(database)
        await session.rollback()
        assert sqlite_write_lock_is_free(database)
        await _write(session, "closed")
    assert sqlite_write_lock_is_free(database)  # the session closed without a commit
    assert await _rows(engines[1]) == []


async def test_a_process_that_dies_holding_the_lock_lets_it_go(
    engines: list[AsyncEngine], database: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, time\n"
         f"connection = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
         "connection.execute('BEGIN IMMEDIATE')\n"
         "connection.execute(\"INSERT INTO t (who) VALUES ('never committed')\")\n"
         "print('held', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        async with create_sessionmaker(engines[0])() as session:
            task = asyncio.create_task(_write(session, "after the holder died"))
            await asyncio.sleep(0.3)
            assert not task.done()
            holder.kill()
            await asyncio.wait_for(task, 5)
            await session.commit()
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert await _rows(engines[1]) == ["after the holder died"]
