"""SQLite writers queue for the write lock (app.sqlite_writers): each engine here stands for a
process; the lock is a real flock on the file beside a real database."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import begin_write, create_engine, create_sessionmaker
from app.sqlite_writers import _acquire, _Waiter, lock_path
from tests.databases import writers_queue_is_free


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


async def _wait_until_free(database: Path) -> None:
    for _ in range(250):
        if writers_queue_is_free(database):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the writers' lock was never let go")


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
        assert not writers_queue_is_free(database)
        task = asyncio.create_task(_write(waiter, "second"))
        await asyncio.sleep(0.3)
        assert not task.done()  # queued behind the holder
        await holder.commit()
        await asyncio.wait_for(task, 5)
        assert not writers_queue_is_free(database)  # now the second holds it
        await waiter.commit()
    await _wait_until_free(database)
    assert await _rows(first) == ["first", "second"]


async def test_a_connection_waits_in_one_thread_kept_for_all_its_waits(
    database: Path,
) -> None:
    earlier = {t for t in threading.enumerate() if t.name == "sqlite-writer-wait"}

    def _waiting_threads() -> list[threading.Thread]:
        return [
            t for t in threading.enumerate() if t.name == "sqlite-writer-wait" and t not in earlier
        ]

    holding, waiting = (
        create_engine(f"sqlite+aiosqlite:///{database}", pool_size=1, max_overflow=0)
        for _ in range(2)
    )
    try:
        for engine in (holding, waiting):  # each opens its one connection beforehand
            assert await _rows(engine) == []
        for n in range(3):
            async with (
                create_sessionmaker(holding)() as holder,
                create_sessionmaker(waiting)() as waiter,
            ):
                await _write(holder, f"held {n}")
                task = asyncio.create_task(_write(waiter, f"waited {n}"))
                await asyncio.sleep(0.1)
                assert not task.done()
                await holder.commit()
                await asyncio.wait_for(task, 5)
                await waiter.commit()
            assert len(_waiting_threads()) == 1  # the same thread, idle until the next wait
    finally:
        await holding.dispose()
        await waiting.dispose()
    for _ in range(100):  # the connection closed: its thread ends
        if not _waiting_threads():
            break
        await asyncio.sleep(0.02)
    assert _waiting_threads() == []
    assert await _rows_of(database) == [w for n in range(3) for w in (f"held {n}", f"waited {n}")]


async def _rows_of(database: Path) -> list[str]:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        return await _rows(engine)
    finally:
        await engine.dispose()


async def test_a_wait_given_up_never_lets_go_of_a_lock_taken_since(database: Path) -> None:
    # A connection's wait times out behind another process; that process lets go and the
    # connection's next transaction takes the lock at once, while the given-up wait is still
    # blocked: when it gets its turn it must let go only of what it took itself.
    path = lock_path(database)
    connection_fd = os.open(path, os.O_RDWR)
    other = os.open(path, os.O_RDWR)
    waiter = _Waiter()
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        assert await _acquire(waiter, path, 0.2) is None  # given up; its thread still waits
        fcntl.flock(other, fcntl.LOCK_UN)
        fcntl.flock(connection_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the next transaction's
        await asyncio.sleep(0.3)  # time for the given-up wait to take its turn
        assert not writers_queue_is_free(database)
        fcntl.flock(connection_fd, fcntl.LOCK_UN)
        await _wait_until_free(database)  # and the given-up wait let go of its own
    finally:
        waiter.stop()
        os.close(connection_fd)
        os.close(other)


async def test_rollback_and_close_let_the_lock_go(
    engines: list[AsyncEngine], database: Path
) -> None:
    async with create_sessionmaker(engines[0])() as session:
        await _write(session, "rolled back")
        await session.rollback()
        assert writers_queue_is_free(database)
        await _write(session, "closed")
    assert writers_queue_is_free(database)  # the session closed without a commit
    assert await _rows(engines[1]) == []


async def test_a_cancelled_waiter_does_not_keep_the_lock(
    engines: list[AsyncEngine], database: Path
) -> None:
    first, second, third = engines
    async with create_sessionmaker(first)() as holder, create_sessionmaker(second)() as waiter:
        await _write(holder, "first")
        task = asyncio.create_task(_write(waiter, "cancelled"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await holder.commit()
    # The cancelled wait's thread gets the lock once the holder lets it go, and gives it back.
    await _wait_until_free(database)
    async with create_sessionmaker(third)() as later:
        await asyncio.wait_for(_write(later, "later"), 5)
        await later.commit()
    assert await _rows(third) == ["first", "later"]


async def test_a_holder_that_never_lets_go_costs_at_most_the_busy_timeout(
    database: Path,
) -> None:
    # A process that took the queue's lock and hangs, without holding SQLite's: the writer
    # gives up the queue after its busy timeout and writes.
    fd = os.open(lock_path(database), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    engine = create_engine(f"sqlite+aiosqlite:///{database}", connect_args={"timeout": 0.5})
    try:
        async with create_sessionmaker(engine)() as session:
            await asyncio.wait_for(_write(session, "after the timeout"), 10)
            await session.commit()
        assert await _rows(engine) == ["after the timeout"]
    finally:
        os.close(fd)
        await engine.dispose()


async def test_a_process_that_dies_holding_the_lock_lets_it_go(
    engines: list[AsyncEngine], database: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(lock_path(database))!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
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


def test_a_process_waiting_in_the_queue_can_still_exit(database: Path) -> None:
    # The wait's thread is blocked in flock() on a lock this test holds; the process gives up
    # waiting and ends: it must not stay behind to join that thread.
    fd = os.open(lock_path(database), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    script = (
        "import asyncio\n"
        "from app.db import begin_write, create_engine, create_sessionmaker\n"
        "async def main():\n"
        f"    engine = create_engine('sqlite+aiosqlite:///{database}')\n"
        "    async with create_sessionmaker(engine)() as session:\n"
        "        try:\n"
        "            await asyncio.wait_for(begin_write(session), 0.5)\n"
        "        except TimeoutError:\n"
        "            print('gave up', flush=True)\n"
        "asyncio.run(main())\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=20
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "gave up"
    finally:
        os.close(fd)
