"""SQLite through aiosqlite with one trip to the connection's thread per statement.

Kept because SQLite's targets are missed without it. Measured against SQLAlchemy's stock
aiosqlite dialect in the same runs (2026-12-04, VM 2 cores shared, bench/plain.py):
`bench.intake --databases sqlite --variants shipped,driver`, then `driver,shipped`:
confirmations 124 and 142/s with it, 87 and 89/s without (target 100/s); the submissions ratio
1.19 and 0.96 with it, 0.50 and 0.55 without (target 0.50; 0.43-0.52 in four runs before).
`bench.delivery --letters 20000 --databases sqlite --variants ...`, each order: the worker at one
connection 68 and 55 % of raw aiosmtplib with it, 52 and 39 % without (target 60 %; the record
step writes through run_statements); at 16 connections the same either way (56-67 %).

aiosqlite runs each connection in a thread of its own; every call is a wake-up of that thread and
then of the event loop, each costing more than a small statement itself. SQLAlchemy's adapter
makes four such trips for each statement: make a cursor, execute, fetch the rows, close the
cursor. The cursor here does all four in one function run in the connection's thread, and keeps
the description, row count, last row id and rows it returns. Measured with
bench/intake_profile.py on SQLite (medians of five interleaved runs): a submission 3.2 -> 2.1 ms
of CPU, a confirmation of 50 letters 13.7 -> 11.2 ms, the bare endpoint 1.3 -> 1.0 ms.

Two more trips are saved: a transaction's BEGIN is sent with its first statement, and
`run_in_thread` (through app.db.run_sync) runs a whole function of statements, and the COMMIT, in
the connection's thread at once. The event loop, busy with other requests, no longer stands
between a writer's statements while it holds SQLite's lock (the whole database's): under load a
confirmation of 50 letters held it 11.1-11.5 ms on average before, 9.3 ms after, at a higher
rate (see bench/README.md).

It uses three names aiosqlite does not document: `Connection._execute` (run a function in the
connection's thread), `Connection._conn` (the sqlite3 connection in it) and `Connection._thread`,
all there since aiosqlite's first releases. The whole test suite runs on this driver, and
tests/test_sqlite_driver.py checks what SQLAlchemy reads of a cursor, so a change in aiosqlite
shows there first. Server-side cursors (streamed results) stay SQLAlchemy's own, sending a
deferred BEGIN first.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
)
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_

_Outcome = tuple[Any, list[Any], int, int | None]
_T = TypeVar("_T")
# What SQLAlchemy's "begin" event sends (app.db): deferred, see _Connection.
_BEGINS = frozenset({"BEGIN", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"})


class OneTripCursor:
    """The DB-API cursor SQLAlchemy drives, each statement one call in the connection's thread."""

    server_side = False

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = cast(aiosqlite.Connection, adapt_connection._connection)
        self._rows: collections.deque[Any] = collections.deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def _run(self, statement: Callable[[sqlite3.Cursor], object]) -> None:
        adapt = cast(_Connection, self._adapt_connection)
        begin = adapt.take_begin()
        sqlite_connection = self._connection

        def in_thread() -> _Outcome:
            connection = sqlite_connection._conn
            if begin is not None:
                connection.execute(begin)
            cursor = connection.cursor()
            try:
                statement(cursor)
                rows = cursor.fetchall() if cursor.description else []
                return cursor.description, rows, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        try:
            outcome = adapt.call(in_thread)
        except Exception as error:
            adapt._handle_exception(error)
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = collections.deque(rows)

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> None:
        if operation in _BEGINS and not parameters:
            # No trip of its own: it goes with the transaction's first statement (see _Connection).
            cast(_Connection, self._adapt_connection).defer_begin(operation)
            self.description, self.rowcount, self.lastrowid = None, -1, None
            self._rows.clear()
            return
        self._run(
            lambda cursor: cursor.execute(operation, () if parameters is None else parameters)
        )

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> None:
        self._run(lambda cursor: cursor.executemany(operation, seq_of_parameters))

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor closed in the thread."""

    def close(self) -> None:
        self._rows.clear()

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __enter__(self) -> OneTripCursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _StreamingCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """SQLAlchemy's server-side cursor (Connection.stream), sending a deferred BEGIN first."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cast(_Connection, self._adapt_connection).send_begin()
        return super().execute(operation, parameters)


class _Connection(AsyncAdapt_aiosqlite_connection):
    """The DB-API connection: calls in the connection's thread, BEGIN deferred to the
    transaction's first statement."""

    __slots__ = ("_begin",)
    _cursor_cls = OneTripCursor  # type: ignore[assignment]
    _ss_cursor_cls = _StreamingCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None

    @property
    def _aiosqlite(self) -> aiosqlite.Connection:
        return cast(aiosqlite.Connection, self._connection)

    def call(self, function: Callable[[], _T]) -> _T:
        """`function()` in the connection's thread: directly when already there (run_in_thread),
        else one trip from the event loop's greenlet."""
        if threading.current_thread() is self._aiosqlite._thread:
            return function()
        run: Callable[..., Awaitable[_T]] = self._aiosqlite._execute
        return await_(run(function))

    def defer_begin(self, statement: str) -> None:
        self._begin = statement

    def take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    def send_begin(self) -> None:
        """Send a deferred BEGIN now, on its own (for a statement that cannot take it along)."""
        begin = self.take_begin()
        if begin is not None:
            connection = self._aiosqlite
            try:
                self.call(lambda: connection._conn.execute(begin).close())
            except Exception as error:
                self._handle_exception(error)

    def _end(self, how: Callable[[sqlite3.Connection], None]) -> None:
        sqlite_connection = self._aiosqlite._connection
        if (
            self.take_begin() is not None  # nothing was begun: its BEGIN is still deferred
            or sqlite_connection is None  # closed
            # Ended already (committed in the thread by run_in_thread) or never begun: no trip.
            # Nothing else uses the connection meanwhile: SQLAlchemy waits for this call.
            or not sqlite_connection.in_transaction
        ):
            return
        try:
            self.call(partial(how, sqlite_connection))
        except Exception as error:
            self._handle_exception(error)

    def commit_in_thread(self) -> None:
        """COMMIT from the connection's thread (run_in_thread); SQLAlchemy's commit, later, has
        nothing left to do."""
        self._aiosqlite._conn.commit()

    def commit(self) -> None:
        self._end(sqlite3.Connection.commit)

    def rollback(self) -> None:
        self._end(sqlite3.Connection.rollback)

    def close(self) -> None:
        self._begin = None
        super().close()


def is_ours(dbapi_connection: Any) -> bool:
    """Whether a pooled DB-API connection is this driver's (run_in_thread can take it)."""
    return isinstance(dbapi_connection, _Connection)


async def run_in_thread(
    dbapi_connection: Any, function: Callable[..., _T], *args: Any, commit: bool = False
) -> _T:
    """Run `function(*args)` in the thread of this connection (an engine's pooled DB-API
    connection on this driver), with the caller's context variables: every statement it makes
    through SQLAlchemy runs there directly, with no trip to the event loop in between. With
    `commit`, the transaction commits there too once `function` returns (an error of the
    COMMIT comes as SQLAlchemy's, IntegrityError and so on).

    If the caller is cancelled, it still waits for `function` to end before the cancellation
    goes on: until then the thread uses the caller's session, which nothing else may touch."""
    connection = cast(_Connection, dbapi_connection)
    context = contextvars.copy_context()

    def in_thread() -> _T:
        result = context.run(function, *args)
        if commit:
            try:
                connection.commit_in_thread()
            except sqlite3.Error as error:
                raise DBAPIError.instance(
                    "COMMIT", None, error, sqlite3.Error, dialect=SQLiteDialect()
                ) from error
        return result

    run: Callable[..., Awaitable[_T]] = connection._aiosqlite._execute
    done: asyncio.Future[_T] = asyncio.ensure_future(run(in_thread))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])
        raise


async def run_statements(
    dbapi_connection: Any,
    statements: Sequence[tuple[str, Sequence[Any]]],
    *,
    begin: str | None = None,
) -> None:
    """Execute `statements` (SQL for sqlite3 and its parameters, converted already) and COMMIT,
    in one trip to the connection's thread, the transaction's deferred BEGIN first (`begin` on a
    connection taken from the pool directly, which SQLAlchemy began nothing on): for writes
    that need nothing of SQLAlchemy but their SQL, so that almost no Python runs while they hold
    the database's write lock. An error comes as SQLAlchemy's (IntegrityError and so on), without
    the parameters in its message, and leaves the transaction to be rolled back."""
    connection = cast(_Connection, dbapi_connection)
    if begin is not None:
        connection.defer_begin(begin)

    def work() -> None:
        sqlite_connection = connection._aiosqlite._conn
        begin = connection.take_begin()
        for sql, parameters in ([(begin, ())] if begin is not None else []) + list(statements):
            try:
                sqlite_connection.execute(sql, parameters).close()
            except sqlite3.Error as error:
                raise DBAPIError.instance(
                    sql, None, error, sqlite3.Error, hide_parameters=True, dialect=SQLiteDialect()
                ) from error

    await run_in_thread(connection, work, commit=True)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy adapts it, with OneTripCursor (create_engine(..., module=))."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*args, **kwargs)
        return _Connection(self, adapted._connection)
