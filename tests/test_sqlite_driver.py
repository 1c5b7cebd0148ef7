"""SQLite engines run on app.sqlite_driver: one trip to aiosqlite's thread per statement, with
everything SQLAlchemy reads of a DB-API cursor."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from app.db import begin_write, create_engine, create_sessionmaker, insert_and_commit, run_sync
from app.sqlite_driver import OneTripCursor, run_in_thread
from tests.databases import sqlite_write_lock_is_free

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


async def test_begin_goes_with_the_transactions_first_statement(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    other = create_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}", connect_args={"timeout": 0.05}
    )
    try:
        async with create_sessionmaker(engine)() as session:
            # SQLite's lock is taken only with the first statement, not here.
            await begin_write(session)
            async with other.begin() as connection:
                await connection.execute(insert(item).values(name="before"))
            await session.execute(insert(item).values(name="mine"))  # BEGIN IMMEDIATE with it
            with pytest.raises(OperationalError, match="locked"):
                async with other.begin() as connection:
                    await connection.execute(insert(item).values(name="during"))
            await session.commit()
        async with engine.connect() as connection:
            names = (await connection.execute(select(item.c.name).order_by(item.c.id))).scalars()
            assert list(names) == ["before", "mine"]
    finally:
        await other.dispose()


async def test_a_stream_sends_the_deferred_begin_first(engine: AsyncEngine, tmp_path: Path) -> None:
    other = create_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}", connect_args={"timeout": 0.05}
    )
    try:
        async with create_sessionmaker(engine)() as session:
            await begin_write(session)
            stream = await session.stream(select(item.c.id))  # the first statement
            assert [row async for row in stream] == []
            with pytest.raises(OperationalError, match="locked"):  # BEGIN IMMEDIATE went first
                async with other.begin() as connection:
                    await connection.execute(insert(item).values(name="during"))
            await session.rollback()
    finally:
        await other.dispose()


async def test_a_transaction_without_statements_ends_quietly(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    async with create_sessionmaker(engine)() as session:
        await begin_write(session)
        await session.commit()
        assert sqlite_write_lock_is_free(tmp_path / "driver.db")
        await begin_write(session)
        await session.rollback()
        assert sqlite_write_lock_is_free(tmp_path / "driver.db")
        assert (await session.execute(select(item.c.id))).first() is None


language: contextvars.ContextVar[str] = contextvars.ContextVar("language", default="ru")


def _insert_names(session: Session, names: list[str]) -> list[int]:
    """Runs in the connection's own thread: statements go straight to SQLite."""
    raw = session.connection().connection.dbapi_connection
    assert threading.current_thread() is getattr(raw, "_aiosqlite")._thread  # noqa: B009
    assert language.get() == "en"  # the caller's context variables
    statement = insert(item).returning(item.c.id)
    return [session.execute(statement, {"name": name}).scalar_one() for name in names]


async def test_run_sync_runs_the_work_in_the_connections_thread_and_commits(
    engine: AsyncEngine,
) -> None:
    language.set("en")
    async with create_sessionmaker(engine)() as session:
        await begin_write(session)
        ids = await run_sync(session, partial(_insert_names, names=["a", "b"]), commit=True)
        assert ids == [1, 2]
        assert not session.in_transaction()
    async with engine.connect() as connection:
        assert list((await connection.execute(select(item.c.name))).scalars()) == ["a", "b"]


async def test_a_commit_in_the_thread_lets_the_writers_queue_go_at_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    language.set("en")
    async with create_sessionmaker(engine)() as session:
        await begin_write(session)
        await session.execute(insert(item).values(name="first"))
        assert not sqlite_write_lock_is_free(tmp_path / "driver.db")
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        await run_in_thread(
            raw.dbapi_connection, partial(_insert_names, names=["b"]), session.sync_session,
            commit=True,
        )  # fmt: skip
        # Committed and the lock let go while the connection is still this session's.
        assert sqlite_write_lock_is_free(tmp_path / "driver.db")
        assert session.in_transaction()
        await session.commit()  # SQLAlchemy's side: nothing left for SQLite to do
    async with engine.connect() as connection:
        names = (await connection.execute(select(item.c.name).order_by(item.c.id))).scalars()
        assert list(names) == ["first", "b"]


async def test_run_sync_errors_keep_their_types_and_leave_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    language.set("en")
    async with create_sessionmaker(engine)() as session:
        await begin_write(session)
        with pytest.raises(IntegrityError):
            await run_sync(session, partial(_insert_names, names=["x", "x"]), commit=True)
        await session.rollback()
        assert sqlite_write_lock_is_free(tmp_path / "driver.db")
        # the session goes on as usual afterwards
        await begin_write(session)
        await run_sync(session, partial(_insert_names, names=["y"]))
        await session.commit()
    async with engine.connect() as connection:
        assert list((await connection.execute(select(item.c.name))).scalars()) == ["y"]


async def test_insert_and_commit_sends_rows_as_sql_in_one_trip(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    async with create_sessionmaker(engine)() as reader:
        await reader.scalar(select(item.c.id))  # a read in progress elsewhere does not matter
        await insert_and_commit(engine, [(item, {"name": "a"}), (item, {"name": "b"})])
        assert sqlite_write_lock_is_free(tmp_path / "driver.db")
    async with engine.connect() as connection:
        names = (await connection.execute(select(item.c.name).order_by(item.c.id))).scalars()
        assert list(names) == ["a", "b"]


async def test_a_write_committed_in_the_thread_makes_one_trip_in_all(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[object] = []
    original: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, function: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(function)
        return await original(self, function, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    await insert_and_commit(engine, [(item, {"name": "a"})])  # the connection opens (its trips)
    trips.clear()
    await insert_and_commit(engine, [(item, {"name": "b"})])
    # BEGIN IMMEDIATE, the statements and the COMMIT; the pool's rollback on return finds no
    # transaction left and makes no trip of its own.
    assert len(trips) == 1


async def test_insert_and_commit_waits_its_turn_behind_another_process(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)  # another process
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(insert_and_commit(engine, [(item, {"name": "queued"})]))
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting for the write lock (the busy timeout), not failing
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
    finally:
        other.close()
    assert sqlite_write_lock_is_free(tmp_path / "driver.db")
    async with engine.connect() as connection:
        assert list((await connection.execute(select(item.c.name))).scalars()) == ["queued"]


async def test_insert_and_commit_errors_are_sqlalchemys_hide_values_and_leave_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [(item, {"name": "secret-name"}), (item, {"name": "secret-name"})]
    with pytest.raises(IntegrityError) as raised:
        await insert_and_commit(engine, rows)
    assert "secret-name" not in str(raised.value)
    # Rolled back, the lock let go and the connection back in the pool, ready for the next.
    assert sqlite_write_lock_is_free(tmp_path / "driver.db")
    await insert_and_commit(engine, [(item, {"name": "after"})])
    async with engine.connect() as connection:
        assert list((await connection.execute(select(item.c.name))).scalars()) == ["after"]


def _orphan(session: Session) -> None:
    session.execute(text("INSERT INTO child (parent_id) VALUES (999)"))  # checked at COMMIT


async def test_a_failed_commit_in_the_thread_is_sqlalchemys_error_and_keeps_the_lock(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await connection.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES "
                "parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    async with create_sessionmaker(engine)() as session:
        await begin_write(session)
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await run_sync(session, _orphan, commit=True)
        # Still in the transaction, the lock held, until the caller rolls back.
        assert not sqlite_write_lock_is_free(tmp_path / "driver.db")
        await session.rollback()
        assert sqlite_write_lock_is_free(tmp_path / "driver.db")
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM child"))).scalar() == 0


async def test_a_cancelled_caller_waits_for_the_work_in_the_thread(engine: AsyncEngine) -> None:
    language.set("en")
    finished = threading.Event()

    def slow(session: Session) -> None:
        _insert_names(session, ["slow"])
        time.sleep(0.3)
        finished.set()

    async with create_sessionmaker(engine)() as session:
        await begin_write(session)
        task = asyncio.create_task(run_sync(session, slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancellation went on only once the thread was done with the session.
        assert finished.is_set()
        await session.rollback()
    async with engine.connect() as connection:
        assert (await connection.execute(select(item.c.id))).first() is None


async def test_insert_and_commit_in_memory() -> None:
    # One connection for all (a StaticPool): the write still goes in one trip.
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await insert_and_commit(engine, [(item, {"name": "a"})])
        async with engine.connect() as connection:
            assert list((await connection.execute(select(item.c.name))).scalars()) == ["a"]
    finally:
        await engine.dispose()
