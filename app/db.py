"""Database engine, sessions and the declarative base shared by every domain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, Table, bindparam, event, insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlalchemy.util import greenlet_spawn

from app.config import DATABASE_MAX_OVERFLOW, DATABASE_POOL_SIZE, Settings
from app.sqlite_driver import OneTripDBAPI, is_ours, run_in_thread, run_statements

T = TypeVar("T")

BUSY_TIMEOUT = 30.0  # seconds a SQLite writer waits for the lock before "database is locked"

# Alembic needs named constraints to alter them, on SQLite above all.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database (as SQLAlchemy tells
    them apart: no path, `:memory:`, or `mode=memory`)."""
    parsed = make_url(url)
    path = parsed.database or ""
    if not path or path == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    return Path(path)


def engine_for(settings: Settings) -> AsyncEngine:
    """The engine of a long-running process (web, worker): the settings' database and pool."""
    return create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )


def create_engine(url: str, *, foreign_keys: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite, WAL mode, foreign keys on (unless told), a busy timeout and
    one trip to the connection's thread per statement (app.sqlite_driver)."""
    pooled = True
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        pooled = path is not None  # in memory: one database, one connection, no pool to size
        kwargs.setdefault("connect_args", {"timeout": BUSY_TIMEOUT})
        if url.startswith("sqlite+aiosqlite:"):
            kwargs.setdefault("module", OneTripDBAPI())
    if pooled:
        kwargs.setdefault("pool_size", DATABASE_POOL_SIZE)
        kwargs.setdefault("max_overflow", DATABASE_MAX_OVERFLOW)
    else:
        kwargs.pop("pool_size", None)
        kwargs.pop("max_overflow", None)
    # An error's message never carries a statement's values: they are senders' names and
    # addresses (the failsafe logs no message; this holds wherever else one might end up).
    kwargs.setdefault("hide_parameters", True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


def _configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN, so that claims can use BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def begin_write(session: AsyncSession) -> None:
    """Make the session's next statements a write transaction.

    SQLite: end any read transaction and BEGIN IMMEDIATE, so that the transaction never has to
    upgrade a read snapshot to the write lock, which fails at once ("database is locked")
    instead of waiting when another process wrote in between. PostgreSQL: nothing to do; the
    transaction in progress (or the next) reads and writes alike, and under READ COMMITTED each
    statement sees what is committed when it starts."""
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        await session.commit()
    await session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})


async def run_sync(
    session: AsyncSession, work: Callable[[Session], T], *, commit: bool = False
) -> T:
    """`work(sync_session)` in the session's transaction, as AsyncSession.run_sync, for the
    statements of a write transaction that need nothing but the database between them; with
    `commit`, the session is flushed and committed right after (it must then write no more).

    On SQLite (app.sqlite_driver) it runs in the connection's own thread, its statements and the
    COMMIT in one trip: a writer holds the whole database's lock, and each statement's result
    would otherwise wait for the event loop, which other requests keep busy (a confirmation of
    50 letters held it 11 ms on average under load, for 3.5 ms of SQLite's work; 9 ms this
    way). `work` must not commit, roll back or await; context variables (the request's
    language) are the caller's. Elsewhere (PostgreSQL) it is AsyncSession.run_sync."""
    if commit:
        work = partial(_flushed, work)
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).dbapi_connection
    if is_ours(raw):  # SQLite on app.sqlite_driver (any engine made by create_engine)
        result = await run_in_thread(raw, work, session.sync_session, commit=commit)
    else:
        result = await session.run_sync(work)
    if commit:
        await session.commit()
    return result


def _flushed(work: Callable[[Session], T], session: Session) -> T:
    result = work(session)
    session.flush()
    return result


async def insert_and_commit(
    engine: AsyncEngine, rows: Sequence[tuple[Table, Mapping[str, Any]]]
) -> None:
    """INSERT each row into its table in one write transaction, and commit, on a connection of
    its own: on error nothing is written and the connection is back in the pool, rolled back.
    The caller holds no transaction open meanwhile: on an in-memory database every session
    shares the one connection (a StaticPool), whose transaction this would be.

    On SQLite (app.sqlite_driver) the connection is taken from the pool directly, with no
    SQLAlchemy Session, Connection or transaction around it; the INSERTs go to the driver as
    SQL, each value converted by its column's type as SQLAlchemy would, from BEGIN IMMEDIATE to
    COMMIT in one trip to the connection's thread, so that no Python of SQLAlchemy's runs while
    the write lock is held.
    A submission's two rows this way cost about 0.2 ms less of the event loop's CPU than through
    an AsyncSession (bench/README.md). Elsewhere a Core transaction. Each row gives every column
    that has a default of SQLAlchemy's (ValueError otherwise): this path applies none."""
    statements = []
    for table, row in rows:
        sql, processors = _driver_insert(engine.dialect, table, tuple(row))
        values = tuple(
            row[name] if process is None else process(row[name]) for name, process in processors
        )
        statements.append((sql, values))  # converted before the write lock is taken
    if not isinstance(engine.dialect.loaded_dbapi, OneTripDBAPI):
        async with engine.connect() as connection:
            await connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with connection.begin():
                for table, row in rows:
                    await connection.execute(insert(table), dict(row))
        return
    pooled = await engine.raw_connection()
    try:
        await run_statements(pooled.dbapi_connection, statements, begin="BEGIN IMMEDIATE")
    finally:
        # Back to the pool; after an error its rollback is a trip to the thread, in a greenlet.
        await greenlet_spawn(pooled.close)


@lru_cache(maxsize=32)
def _driver_insert(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    """The SQL of an INSERT of these columns for the driver, and each parameter's column with
    its type's conversion, in the SQL's order."""
    defaulted = sorted({c.name for c in table.columns if c.default is not None} - set(columns))
    if defaulted:  # SQLAlchemy would fill them in; insert_and_commit does not
        raise ValueError(f"{table.name}: a value is needed for {', '.join(defaulted)}")
    compiled = insert(table).values({c: bindparam(c) for c in columns}).compile(dialect=dialect)
    names = compiled.positiontup or []
    return str(compiled), tuple((n, bind_processor(table.c[n].type, dialect)) for n in names)


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The conversion SQLAlchemy applies to a value of this type for this dialect's driver: the
    dialect's own implementation's (on SQLite a DateTime's, for one, which the generic type
    leaves to sqlite3's deprecated default adapter, in another text format)."""
    return type_.dialect_impl(dialect).bind_processor(dialect)
