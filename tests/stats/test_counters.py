"""The trigger-kept counters agree with a count of the letters through every change: creation,
the state machine (ORM and bulk), cancellation, hold and release, the real worker's sends, retries
and failures, the purge, and deletion."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.delivery.purge import purge
from app.letters import service as letters_service
from app.letters.models import Letter, LetterStatus, move
from app.stats import consistency, figures, filters, public
from app.stats.models import DeputyDayCount
from app.stats.schemas import StatsFilter
from tests.delivery.conftest import Received, SmtpServer, drain, relay_settings, smtp_server

__all__ = ["smtp_server"]  # the fixture, used here as in the delivery tests
from tests.factories import create_campaign, create_deputy, create_letter


async def _totals(session: AsyncSession) -> dict[str, int]:
    scope = filters.Scope(filter=StatsFilter())
    return {s: n for s, n in (await figures.totals(session, scope=scope)).items() if n}


async def _assert_consistent(session: AsyncSession) -> None:
    assert await consistency.discrepancies(session) == []


async def test_counts_follow_the_state_machine_and_bulk_moves(
    session: AsyncSession, settings: Settings
) -> None:
    campaign = await create_campaign(session)
    deputy = await create_deputy(session)
    letters = [
        await create_letter(
            session, settings=settings, deputy=deputy, campaign_id=campaign.id, appeal_version_id=v
        )
        for v in (1, 1, 1, 2, 2)
    ]
    await session.commit()
    ids = [letter.id for letter in letters]
    assert await _totals(session) == {"queued": 5}
    await _assert_consistent(session)

    move(letters[0], LetterStatus.sending)
    move(letters[0], LetterStatus.deferred)
    await session.commit()
    assert await _totals(session) == {"queued": 4, "deferred": 1}

    # Bulk: hold version 1 (queued and deferred letters), release, then cancel version 2.
    assert await letters_service.hold_version_letters(session, appeal_version_id=1) == 3
    await session.commit()
    assert await _totals(session) == {"held": 3, "queued": 2}
    await _assert_consistent(session)
    assert await letters_service.release_version_letters(session, appeal_version_id=1) == 3
    assert await letters_service.cancel_version_letters(session, appeal_version_id=2) == 2
    await session.commit()
    assert await _totals(session) == {"queued": 3, "cancelled": 2}
    await _assert_consistent(session)

    # A rolled-back change leaves the counters as they were.
    await letters_service.cancel_letters(session, letter_ids=[ids[0]])
    await session.rollback()
    assert await _totals(session) == {"queued": 3, "cancelled": 2}

    # An update that changes no status (the purge, a lease) moves nothing.
    await session.execute(update(Letter).values(last_error="x"))
    await session.commit()
    assert await _totals(session) == {"queued": 3, "cancelled": 2}

    await session.execute(delete(Letter).where(Letter.id == ids[4]))
    await session.commit()
    assert await _totals(session) == {"queued": 3, "cancelled": 1}
    await _assert_consistent(session)


async def test_counts_follow_the_worker_retries_failures_and_the_purge(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    """The real worker: its bulk executemany UPDATEs are counted without any call from it."""
    seen: dict[str, int] = {}

    def behaviour(_n: int, item: Received) -> str:
        # Letters to the "fail" domain fail for good; the first try to "slow" is deferred.
        seen[item.rcpt[0]] = seen.get(item.rcpt[0], 0) + 1
        if item.rcpt[0].endswith("@fail.example.org"):
            return "550 5.1.1 No such mailbox"
        if item.rcpt[0].endswith("@slow.example.org") and seen[item.rcpt[0]] == 1:
            return "451 4.3.0 Try again later"
        return "250 2.0.0 Ok"

    smtp_server.behaviour = behaviour
    async with sessionmaker() as session:
        campaign = await create_campaign(session)
        for domain in ("ok", "slow", "fail"):
            deputy = await create_deputy(session, email=f"d-{domain}@{domain}.example.org")
            for _ in range(3):
                await create_letter(
                    session, settings=settings, deputy=deputy, campaign_id=campaign.id
                )
        await session.commit()
    worker_settings = relay_settings(settings, smtp_server.port)
    await drain(worker_settings, engine, sessionmaker)
    async with sessionmaker() as session:
        assert await _totals(session) == {"sent": 6, "failed": 3}
        scope = filters.Scope(filter=StatsFilter())
        domains = {c.key: c for c in await figures.by_domain(session, scope=scope)}
        assert domains["fail.example.org"].rate("failed") == 1.0
        assert domains["slow.example.org"].counts["sent"] == 3
        await _assert_consistent(session)
        assert await public.letters_sent(session) == 6
        assert await public.letters_sent(session, campaign_id=campaign.id) == 6

    # The purge erases senders and bodies; the counts stay.
    later = settings.model_copy(update={"retention_days": -1})  # every final letter is old
    async with engine.begin() as conn:
        assert await purge(conn, settings=later) == 9
    async with sessionmaker() as session:
        assert await _totals(session) == {"sent": 6, "failed": 3}
        await _assert_consistent(session)


async def test_counts_survive_concurrent_style_executemany(
    session: AsyncSession, settings: Settings
) -> None:
    """Many rows in one executemany (the worker's shape), with distinct outcomes per row."""
    deputies = [await create_deputy(session) for _ in range(3)]
    letters = [
        await create_letter(session, settings=settings, deputy=deputies[i % 3]) for i in range(12)
    ]
    await session.commit()
    table = Letter.__table__
    assert isinstance(table, Table)
    await session.execute(update(table).values(status=LetterStatus.sending))
    outcomes = [LetterStatus.sent, LetterStatus.deferred, LetterStatus.failed, LetterStatus.queued]
    await session.execute(
        update(table).where(table.c.id == bindparam("_id")).values(status=bindparam("_status")),
        [{"_id": letter.id, "_status": outcomes[i % 4]} for i, letter in enumerate(letters)],
    )
    await session.commit()
    assert await _totals(session) == {"sent": 3, "deferred": 3, "failed": 3, "queued": 3}
    await _assert_consistent(session)


async def test_recount_rebuilds_the_same_counters(
    session: AsyncSession, settings: Settings
) -> None:
    deputy = await create_deputy(session)
    for _ in range(3):
        await create_letter(session, settings=settings, deputy=deputy)
    await session.commit()
    before = set((await session.execute(select(DeputyDayCount))).scalars())
    await consistency.recount(session)
    await session.commit()
    await _assert_consistent(session)
    after = (await session.execute(select(DeputyDayCount))).scalars().all()
    assert len(after) == len(before) == 1
    assert after[0].n == 3
    assert after[0].day == dt.datetime.now(dt.UTC).date()


async def test_the_triggers_exist_at_head(session: AsyncSession) -> None:
    """A later migration that rebuilds `letter` on SQLite (batch mode) drops its triggers: it must
    create them again, or every statistic silently stops."""
    if session.get_bind().dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'letter'::regclass"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'letter'"
    names = set((await session.execute(text(query))).scalars())
    assert {"stats_letter_insert", "stats_letter_update", "stats_letter_delete"} <= names
