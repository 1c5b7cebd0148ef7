"""A submission and its confirmation e-mail are written together or not at all, on both
databases (on PostgreSQL as one statement in autocommit, on SQLite as one transaction)."""

from __future__ import annotations

import datetime as dt
from typing import cast

import pytest
from sqlalchemy import Table, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, insert_and_commit
from app.letters import flow, mailer, saving
from app.letters.schemas import SenderIn
from app.letters.submissions import ConfirmationEmail, Submission, SubmissionStatus
from tests.databases import stored_as_sqlalchemy_does
from tests.letters.conftest import make_world

SETTINGS = Settings(environment="test", secret_key="s" * 40)


async def _submitted(session: AsyncSession) -> tuple[flow.Submitted, dict[str, object]]:
    world = await make_world(session)
    await session.commit()
    submitted = flow.submit(
        campaign=world.campaign,
        region_code="RU-TVE",
        deputy_ids=[d.id for d in world.deputies],
        sender=SenderIn(full_name="Мария Петрова", email="maria@example.org", locality="Тверь"),
        reply_to=True,
        language="ru",
        settings=SETTINGS,
    )
    email = mailer.confirmation_row(
        to="maria@example.org",
        subject="Подтвердите",
        body="ссылка\n",
        expires_at=submitted.expires_at,
    )
    return submitted, email


async def _counts(session: AsyncSession) -> tuple[int, int]:
    await session.rollback()
    return (
        int(await session.scalar(select(func.count(Submission.id))) or 0),
        int(await session.scalar(select(func.count(ConfirmationEmail.id))) or 0),
    )


async def test_both_rows_are_written_as_given(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    submitted, email = await _submitted(session)
    async with sessionmaker() as reader:
        # A read in progress, as when the campaign's snapshot was stale: the write commits.
        await reader.scalar(select(func.count(Submission.id)))
        await saving.save(engine, submitted=submitted, email=email)
    await session.rollback()
    row = await session.scalar(select(Submission))
    assert row is not None
    assert row.deputy_ids == submitted.deputy_ids
    assert row.status == SubmissionStatus.pending
    assert row.full_name == "Мария Петрова"
    assert row.expires_at == submitted.expires_at
    assert row.expires_at.tzinfo == dt.UTC
    queued = await session.scalar(select(ConfirmationEmail))
    assert queued is not None
    assert (queued.to_address, queued.subject, queued.body) == (
        "maria@example.org",
        "Подтвердите",
        "ссылка\n",
    )
    assert queued.expires_at == submitted.expires_at
    assert queued.attempts == 0
    # Stored as SQLAlchemy stores them, whichever way they went in (on SQLite, text that
    # compares in time order with what the ORM writes).
    stored = await session.execute(
        text(
            "SELECT s.created_at, s.expires_at, e.created_at, e.next_attempt_at"
            " FROM submission AS s, confirmation_email AS e"
        )
    )
    assert all(stored_as_sqlalchemy_does(value) for row in stored for value in row)


async def test_a_failed_email_row_leaves_no_submission(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    submitted, email = await _submitted(session)
    with pytest.raises(IntegrityError) as raised:
        await saving.save(engine, submitted=submitted, email=email | {"body": None})
    # The error's message carries no value of the statement: they are the sender's data.
    assert "maria@example.org" not in str(raised.value)
    assert "Петрова" not in str(raised.value)
    assert await _counts(session) == (0, 0)


async def test_insert_and_commit_wants_every_column_with_a_default(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    submitted, _email = await _submitted(session)
    row = {k: v for k, v in submitted.row.items() if k != "created_at"}
    with pytest.raises(ValueError, match="created_at"):
        await insert_and_commit(engine, [(cast(Table, Submission.__table__), row)])
    assert await _counts(session) == (0, 0)


async def test_insert_and_commit_writes_rows_on_either_database(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    # SQLite: the driver's one trip; PostgreSQL (the benchmark's seeding): a Core transaction.
    submitted, email = await _submitted(session)
    tables = cast(Table, Submission.__table__), cast(Table, ConfirmationEmail.__table__)
    await insert_and_commit(engine, list(zip(tables, (submitted.row, email), strict=True)))
    assert await _counts(session) == (1, 1)


async def test_a_failed_submission_row_leaves_no_email(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    submitted, email = await _submitted(session)
    await saving.save(engine, submitted=submitted, email=email)
    # The same token hashes again: the submission's unique constraint refuses it.
    with pytest.raises(IntegrityError):
        await saving.save(engine, submitted=submitted, email=email)
    assert await _counts(session) == (1, 1)


async def test_on_postgresql_it_is_one_statement_in_autocommit(
    session: AsyncSession, database_url: str, database_kind: str
) -> None:
    if database_kind != "postgresql":
        pytest.skip("SQLite has no data-modifying WITH: two INSERTs in one trip there")
    submitted, email = await _submitted(session)
    statements: list[str] = []
    engine = create_engine(database_url, pool_size=1, max_overflow=0)  # one connection

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await saving.save(engine, submitted=submitted, email=email)
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        async with engine.connect() as connection:
            # The pooled connection is back in transactions afterwards (the server reports READ
            # COMMITTED either way: the driver's flag tells).
            raw = await connection.get_raw_connection()
            assert getattr(raw.dbapi_connection, "autocommit", None) is False
    finally:
        await engine.dispose()
    (statement,) = statements
    assert " ".join(statement.split()).startswith("WITH submitted AS (INSERT INTO submission")
    assert await _counts(session) == (1, 1)
