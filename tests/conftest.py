"""Fixtures: every test that touches the database runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import migrate
from app.config import Settings
from app.db import Base, create_engine, create_sessionmaker
from app.main import create_app
from tests.databases import DATABASE_KINDS, fresh_database
from tests.pg_server import OwnPostgres, own_postgres

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", params=DATABASE_KINDS)
def database_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(scope="session")
async def database_url(
    database_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database of each kind, migrated to head by Alembic, for the whole run."""
    async with fresh_database(database_kind, tmp_path_factory.mktemp("db")) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessionmaker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database that is emptied after each test."""
    yield create_sessionmaker(engine)
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(environment="test", database_url=database_url, secret_key="t" * 40)


@pytest.fixture
async def client(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP through the ASGI app, on the test database."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.engine.dispose()


@pytest.fixture(scope="session")
def own_pg() -> Iterator[OwnPostgres]:
    """A PostgreSQL server of this run's own (tests.pg_server), for the tests that stop and
    restart it; each makes its own database on it (create_migrated_database)."""
    with own_postgres() as server:
        yield server
