"""The database away: every page and API call answers 503 with Retry-After and a message in the
page's language, never 500, and the service recovers by itself when the database is back.

Against real outages: a PostgreSQL of the test's own (tests.pg_server), stopped and started
again under a running app, and a SQLite file that cannot be opened.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncpg import exceptions as pg_errors  # type: ignore[import-untyped]
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app import migrate
from app.config import Settings
from app.db import Base, create_engine, create_sessionmaker
from app.failsafe import is_outage
from app.letters.submissions import ConfirmationEmail
from app.main import create_app
from app.staff.models import Role
from tests.factories import create_api_token, create_staff
from tests.letters.conftest import LINK, World, api_body, form, make_world
from tests.pg_server import OwnPostgres
from tests.staff.auth import login_ok

UNLIMITED = "1000/minute"
RUSSIAN = "Сервис ненадолго недоступен"
ENGLISH = "The service is briefly unavailable"


def _settings(url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "secret_key": "t" * 40,
        "public_url": "http://testserver",
        "limit_submit_per_address": UNLIMITED,
        "limit_submit_per_net24": UNLIMITED,
        "limit_submit_per_net16": UNLIMITED,
        "limit_submit_per_email": UNLIMITED,
        "limit_links_per_address": UNLIMITED,
        # The submit route answers from its snapshot of the campaign: the outage meets it at
        # the write; with the snapshot emptied, at the read.
        "campaign_cache_seconds": 600.0,
    }
    return Settings(**(values | changes))


@dataclass
class Running:
    """An app on a database with a campaign in it, an editor signed in, an API token and the
    links of one submission."""

    app: FastAPI
    client: httpx.AsyncClient
    world: World
    token: str
    links: dict[str, str]


async def _empty(url: str) -> None:
    engine = create_engine(url)
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))
    await engine.dispose()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    await _empty(settings.database_url)
    engine = create_engine(settings.database_url)
    async with create_sessionmaker(engine)() as session:
        world = await make_world(session)
        editor = await create_staff(session, Role.editor, Role.admin)
        token = await create_api_token(session, editor)
        await session.commit()
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await login_ok(client, editor.email)
            submitted = await client.post(
                "/api/v1/campaigns/hospital/submissions", json=api_body(world)
            )
            assert submitted.status_code == 202, submitted.text
            async with create_sessionmaker(engine)() as session:
                body = await session.scalar(select(ConfirmationEmail.body))
            assert body is not None
            links = dict(LINK.findall(body))
            yield Running(app, client, world, token, links)
    finally:
        await app.state.rate_limiter.aclose()
        await app.state.engine.dispose()
        await engine.dispose()


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    up: int  # the status when the database answers
    json: bool  # the API's error schema, else an HTML page
    options: tuple[tuple[str, Any], ...] = ()


def _probes(r: Running) -> list[Probe]:
    bearer = {"Authorization": f"Bearer {r.token}"}
    english = {"Accept-Language": "en"}
    confirm, status = r.links["confirm"], r.links["status"]
    return [
        Probe("home", "GET", "/", 200, False),
        Probe("home in English", "GET", "/", 200, False, (("headers", english),)),
        Probe("campaigns API", "GET", "/api/v1/campaigns", 200, True),
        Probe("region page", "GET", "/regions/RU-TVE", 200, False),
        Probe("region's deputies API", "GET", "/api/v1/regions/RU-TVE/deputies", 200, True),
        Probe("campaign page", "GET", "/campaigns/hospital", 200, False),
        Probe("form page", "GET", "/campaigns/hospital/RU-TVE", 200, False),
        Probe(
            "submit (snapshot held)",
            "POST",
            "/campaigns/hospital/RU-TVE/submit",
            303,
            False,
            (("data", form(r.world)),),
        ),
        Probe(
            "submissions API",
            "POST",
            "/api/v1/campaigns/hospital/submissions",
            202,
            True,
            (("json", api_body(r.world)),),
        ),
        Probe("confirmation page", "GET", f"/confirm/{confirm}", 200, False),
        Probe("status page", "GET", f"/status/{status}", 200, False),
        Probe("status API", "GET", f"/api/v1/status/{status}", 200, True),
        Probe("staff page (signed in)", "GET", "/staff", 200, False),
        Probe("sink page (signed in)", "GET", "/staff/sink", 200, False),
        Probe("staff API (token)", "GET", "/api/v1/staff/me", 200, True, (("headers", bearer),)),
        Probe(
            "campaigns staff API (token)",
            "GET",
            "/api/v1/staff/campaigns",
            200,
            True,
            (("headers", bearer),),
        ),
        # A write's session begins in its dependency (on SQLite: BEGIN IMMEDIATE there).
        Probe(
            "cancel (form)",
            "POST",
            f"/status/{status}/cancel",
            303,
            False,
            (("data", {"all": "yes"}),),
        ),
        Probe("health", "GET", "/healthz", 200, True),
    ]


async def _request(r: Running, probe: Probe) -> httpx.Response:
    return await r.client.request(
        probe.method, probe.path, follow_redirects=False, **dict(probe.options)
    )


def _assert_unavailable(probe: Probe, response: httpx.Response) -> None:
    assert response.status_code == 503, (probe.name, response.status_code, response.text[:300])
    assert int(response.headers["retry-after"]) > 0, probe.name
    assert response.headers["cache-control"] == "no-store", probe.name
    if probe.path == "/healthz":
        assert response.json() == {"status": "error", "database": "unavailable"}
    elif probe.json:
        body = response.json()
        assert body["error"] == "unavailable", probe.name
        assert body["message"].startswith(RUSSIAN), probe.name
    else:
        assert "text/html" in response.headers["content-type"], probe.name
        english = dict(probe.options).get("headers", {}).get("Accept-Language") == "en"
        assert (ENGLISH if english else RUSSIAN) in response.text, probe.name
        assert response.headers["content-language"] == ("en" if english else "ru")


async def _submit_without_snapshot(r: Running) -> httpx.Response:
    r.app.state.intake_cache.clear()
    return await r.client.post("/campaigns/hospital/RU-TVE/submit", data=form(r.world))


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path_factory.mktemp("own-postgres"))
    server.start()
    try:
        migrate.upgrade(server.url)
        yield server
    finally:
        server.close()


async def test_postgres_stopped_every_page_and_api_is_503_then_recovers(
    own_postgres: OwnPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(_settings(own_postgres.url)) as r:
        probes = _probes(r)
        for probe in probes:  # every probe works first, and warms what can be warmed
            if probe.method == "GET":
                response = await _request(r, probe)
                assert response.status_code == probe.up, (probe.name, response.text[:300])
        with caplog.at_level(logging.WARNING, logger="appeals"):
            await asyncio.to_thread(own_postgres.stop)
            for probe in probes:
                _assert_unavailable(probe, await _request(r, probe))
            _assert_unavailable(probes[7], await _submit_without_snapshot(r))
            await asyncio.to_thread(own_postgres.start)
            # The same app, not restarted: each answers again, the first time it is asked.
            for probe in probes:
                response = await _request(r, probe)
                assert response.status_code == probe.up, (probe.name, response.text[:300])
            assert (await _submit_without_snapshot(r)).status_code == 303
        messages = [record.getMessage() for record in caplog.records]
        assert not [m for m in messages if "unexpected" in m], messages
        # One line when the outage starts, one when it ends: not one per request.
        assert len([m for m in messages if m.startswith("database unavailable")]) == 1, messages
        assert len([m for m in messages if m.startswith("database available again")]) == 1


async def test_postgres_crash_and_restart_under_load_never_answers_500(
    own_postgres: OwnPostgres,
) -> None:
    """Requests keep coming while the server is killed (`immediate`: as a crash) and started
    again: each answer is the normal one or a 503, and the normal ones come back."""
    async with running(_settings(own_postgres.url, campaign_cache_seconds=0.0)) as r:
        probes = [p for p in _probes(r) if not p.path.startswith(("/confirm/", "/api/v1/conf"))]
        seen: dict[tuple[str, int], int] = {}
        wrong: list[tuple[str, int]] = []
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set():
                for probe in probes:
                    status = (await _request(r, probe)).status_code
                    seen[(probe.name, status)] = seen.get((probe.name, status), 0) + 1
                    if status not in (probe.up, 503):
                        wrong.append((probe.name, status))

        loader = asyncio.create_task(load())
        await asyncio.sleep(0.5)
        await asyncio.to_thread(own_postgres.stop, "immediate")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(own_postgres.start)
        await asyncio.sleep(0.5)
        stop.set()
        await loader
        assert wrong == []
        assert any(status == 503 for _, status in seen), seen
        for probe in probes:  # all well again
            response = await _request(r, probe)
            assert response.status_code == probe.up, (probe.name, response.text[:300])


async def test_sqlite_file_that_cannot_be_opened_is_503_then_recovers(tmp_path: Path) -> None:
    database = tmp_path / "appeals.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(migrate.upgrade, url)
    async with running(_settings(url)) as r:
        probes = _probes(r)
        # Every connection of the app is closed; then the file is away (moved, a directory in
        # its place: "unable to open database file"), as on a volume that went missing.
        await r.app.state.engine.dispose()
        away = tmp_path / "away"
        away.mkdir()
        for path in tmp_path.glob("appeals.sqlite3*"):
            shutil.move(path, away / path.name)
        database.mkdir()
        for probe in probes:
            _assert_unavailable(probe, await _request(r, probe))
        _assert_unavailable(probes[0], await _submit_without_snapshot(r))
        database.rmdir()
        for path in away.iterdir():
            shutil.move(path, tmp_path / path.name)
        for probe in probes:
            response = await _request(r, probe)
            assert response.status_code == probe.up, (probe.name, response.text[:300])


def test_what_counts_as_an_outage(tmp_path: Path) -> None:
    database = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(database, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("SELECT * FROM t")
    holder.close()
    with pytest.raises(sqlite3.OperationalError) as no_table:
        other.execute("SELECT * FROM nothing")
    other.close()
    wrapped = OperationalError("SELECT 1", None, locked.value)
    assert is_outage(locked.value)
    assert is_outage(wrapped)
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert is_outage(TimeoutError())
    assert is_outage(pg_errors.CannotConnectNowError("the database system is starting up"))
    assert is_outage(pg_errors.AdminShutdownError("terminating connection"))
    assert is_outage(DBAPIError("SELECT 1", None, pg_errors.ConnectionDoesNotExistError("closed")))
    # Faults of ours stay 500s.
    assert not is_outage(no_table.value)
    assert not is_outage(OperationalError("SELECT", None, no_table.value))
    assert not is_outage(IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE")))
    assert not is_outage(IntegrityError("INSERT", None, pg_errors.UniqueViolationError("dup")))
    assert not is_outage(ValueError("x"))
    assert not is_outage(FileNotFoundError(2, "template"))
