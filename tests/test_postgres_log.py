"""PostgreSQL's own log never gets a citizen's data: every input that a constraint of the tables
holding it (submission, confirmation_email, letter, letter_message) could refuse is refused by
validation first, with a 422 naming the field, so that no statement fails in the server (whose
log would print `DETAIL: Failing row contains (…, maria@example.org, …)` and the statement).

Against a PostgreSQL of the test's own that logs every failing statement in full
(log_min_error_statement = error, log_error_verbosity = verbose), whose log is read afterwards:
not one ERROR. And the settings that the README gives keep a failing row out of the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import func, select

from app import migrate
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.letters.models import Letter
from app.letters.submissions import ConfirmationEmail, Submission
from app.main import create_app
from tests.letters.conftest import LINK, World, api_body, form, make_world
from tests.pg_server import OwnPostgres

UNLIMITED = "1000/minute"
LOCAL_64 = "m" * 64
# 64 + 1 + 189 = 254 characters, the longest address there is.
LONGEST_EMAIL = f"{LOCAL_64}@{'d' * 60}.{'e' * 60}.{'f' * 55}.example.org"


@pytest.fixture(scope="module")
def logging_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    server = OwnPostgres(
        tmp_path_factory.mktemp("logging-postgres"),
        settings={"log_min_error_statement": "error", "log_error_verbosity": "verbose"},
    )
    server.start()
    try:
        migrate.upgrade(server.url)
        yield server
    finally:
        server.close()


@pytest.fixture
async def world_and_client(
    logging_postgres: OwnPostgres,
) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    engine = create_engine(logging_postgres.url)
    async with create_sessionmaker(engine)() as session:
        world = await make_world(session, requires_address=True)
    await engine.dispose()
    settings = Settings(
        environment="test",
        database_url=logging_postgres.url,
        secret_key="t" * 40,
        public_url="http://testserver",
        limit_submit_per_address=UNLIMITED,
        limit_submit_per_net24=UNLIMITED,
        limit_submit_per_net16=UNLIMITED,
        limit_submit_per_email=UNLIMITED,
        limit_links_per_address=UNLIMITED,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield world, client
    await app.state.rate_limiter.aclose()
    await app.state.engine.dispose()


def _boundaries(world: World) -> list[tuple[str, dict[str, Any], bool]]:
    """(what, the fields changed, accepted?) for the sender's fields at and past their limits."""
    decomposing = "\u0958"  # NFC makes two code points of it: the length is counted after NFC
    address = "ул. Советская, д. 1"
    return [
        ("longest name", {"full_name": "Мария " + "а" * 114}, True),
        ("name too long", {"full_name": "Мария " + "а" * 115}, False),
        ("name far too long", {"full_name": "М" * 5000}, False),
        ("name growing under NFC", {"full_name": decomposing * 100}, False),
        ("empty name", {"full_name": ""}, False),
        ("name without letters", {"full_name": "123 456"}, False),
        ("name with NUL", {"full_name": "Мария\x00Петрова"}, False),
        ("name with a newline", {"full_name": "Мария\nПетрова"}, False),
        ("longest address", {"email": LONGEST_EMAIL}, True),
        ("address too long", {"email": "m" + LONGEST_EMAIL}, False),
        ("no address", {"email": ""}, False),
        ("address with NUL", {"email": "maria\x00@example.org"}, False),
        ("non-ASCII address", {"email": "мария@пример.рф"}, False),
        ("longest locality", {"locality": "Т" * 120}, True),
        ("locality too long", {"locality": "Т" * 121}, False),
        ("locality too short", {"locality": "Т"}, False),
        ("longest postal address", {"postal_address": "д" * 300}, True),
        ("postal address too long", {"postal_address": address + "д" * 300}, False),
        ("postal address too short", {"postal_address": "д. 1"}, False),
        ("no consent", {"consent": None}, False),
    ]


async def test_boundary_inputs_are_refused_before_postgresql_sees_them(
    logging_postgres: OwnPostgres, world_and_client: tuple[World, httpx.AsyncClient]
) -> None:
    world, client = world_and_client
    assert len(LONGEST_EMAIL) == 254
    before = logging_postgres.log_text()
    base = {"postal_address": "ул. Советская, д. 1"}
    answers: dict[str, int] = {}
    for n, (what, changes, accepted) in enumerate(_boundaries(world)):
        fields = base | {"email": f"citizen{n}@example.org"} | changes
        page = await client.post(
            "/campaigns/hospital/RU-TVE/submit", data=form(world, **fields), follow_redirects=False
        )
        body = api_body(world, **fields)
        if "consent" in changes:
            body["consent"] = False
        api = await client.post("/api/v1/campaigns/hospital/submissions", json=body)
        answers[f"page: {what}"] = page.status_code
        answers[f"api: {what}"] = api.status_code
        assert page.status_code == (303 if accepted else 422), (what, page.text[:300])
        assert api.status_code == (202 if accepted else 422), (what, api.text[:300])
    deputy_ids: list[Any] = [
        [],
        [0],
        [2**31],
        [2**63],
        list(range(1, 302)),
        [world.deputies[0].id] * 2 + [10**10],
    ]
    for n, ids in enumerate(deputy_ids):
        body = api_body(world, email=f"ids{n}@example.org", deputy_ids=ids, **base)
        assert (
            await client.post("/api/v1/campaigns/hospital/submissions", json=body)
        ).status_code == 422
        data = form(world, email=f"ids{n}@example.org", deputy=[str(i) for i in ids], **base)
        page = await client.post("/campaigns/hospital/RU-TVE/submit", data=data)
        assert page.status_code == 422, ids
    for code in ("", "R" * 17, "ß" * 16):
        body = api_body(world, email="region@example.org", region_code=code, **base)
        response = await client.post("/api/v1/campaigns/hospital/submissions", json=body)
        assert response.status_code == 422, code

    # The accepted ones are confirmed, cancelled with odd ids and erased: no error either.
    engine = create_engine(logging_postgres.url)
    async with create_sessionmaker(engine)() as session:
        bodies = list(await session.scalars(select(ConfirmationEmail.body)))
        pending = await session.scalar(select(func.count()).select_from(Submission))
    assert len(bodies) == pending == 2 * sum(accepted for _, _, accepted in _boundaries(world))
    for body_text in bodies:
        links = dict(LINK.findall(body_text))
        assert (await client.post(f"/confirm/{links['confirm']}")).status_code == 200
        cancel = await client.post(
            f"/api/v1/status/{links['status']}/cancel", json={"letter_ids": [2**31, -1, 0]}
        )
        assert cancel.status_code in (200, 422)
        assert (await client.post(f"/api/v1/status/{links['status']}/erase")).status_code == 200
    async with create_sessionmaker(engine)() as session:
        letters = await session.scalar(select(func.count()).select_from(Letter))
    assert letters == len(bodies) * len(world.deputies)
    await engine.dispose()

    await asyncio.sleep(0.2)  # the server writes its log line by line
    log = logging_postgres.log_text()[len(before) :]
    errors = [line for line in log.splitlines() if "ERROR" in line or "DETAIL" in line]
    assert errors == []
    assert "example.org" not in log


async def test_the_readme_settings_keep_a_failing_row_out_of_the_log(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """What README.md tells operators to set, against the same constraint error with and
    without it."""
    logs = {}
    for name, settings in {
        "defaults": {},
        "readme": {"log_error_verbosity": "terse", "log_min_error_statement": "panic"},
    }.items():
        server = OwnPostgres(tmp_path_factory.mktemp(f"pg-{name}"), settings=settings)
        server.start()
        try:
            connection = await asyncpg.connect(server.url.replace("+asyncpg", ""))
            await connection.execute("CREATE TABLE t (email text NOT NULL UNIQUE, name text)")
            await connection.execute("INSERT INTO t VALUES ('maria@example.org', 'Мария')")
            for row in (("maria@example.org", "Мария"), (None, "Мария Петрова")):
                with pytest.raises(asyncpg.IntegrityConstraintViolationError):
                    await connection.execute("INSERT INTO t VALUES ($1, $2)", *row)
            await connection.close()
            await asyncio.sleep(0.2)
            logs[name] = server.log_text()
        finally:
            server.close()
    assert "Failing row contains (null, Мария Петрова)" in logs["defaults"]
    assert "maria@example.org" in logs["defaults"]
    assert "STATEMENT:  INSERT INTO t" in logs["defaults"]
    assert "violates not-null constraint" in logs["readme"]  # the error is still logged
    assert "Мария" not in logs["readme"]
    assert "maria@example.org" not in logs["readme"]
    assert "STATEMENT" not in logs["readme"]
    assert "DETAIL" not in logs["readme"]
