"""Throw-away test databases: a SQLite file, or a PostgreSQL database made and dropped per run."""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import create_engine

DATABASE_KINDS = ("sqlite", "postgresql")
# The database used to create and drop the per-run test databases.
POSTGRES_ADMIN_URL = os.environ.get(
    "APPEALS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip on a laptop that lacks a part; under CI=true the absence is a failure."""
    if in_ci():
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database of this kind; drop it afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'test-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    name = f"appeals_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # connection refused, no such role, ...
        await admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}")
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def sqlite_write_lock_is_free(database: Path) -> bool:
    """Whether no connection holds SQLite's write lock on this database (a write transaction
    in progress): another connection can begin one at once."""
    connection = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return False
    finally:
        connection.close()


# How SQLAlchemy keeps a timestamp in SQLite: text without the zone (sqlite3's own adapter would
# append "+00:00", and such text no longer compares in time order with SQLAlchemy's).
_SQLITE_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def stored_as_sqlalchemy_does(value: object) -> bool:
    """Whether a timestamp read back raw (SQL text, no column types) is stored as SQLAlchemy
    stores it: PostgreSQL's timestamptz, or SQLite's text in SQLAlchemy's format."""
    if isinstance(value, dt.datetime):
        return value.tzinfo is not None
    return isinstance(value, str) and _SQLITE_TIMESTAMP.fullmatch(value) is not None
