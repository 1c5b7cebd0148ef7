"""Pacing shared by all workers (database or Redis), concurrency slots, breaker, pauses, leases."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, utcnow
from app.delivery import pacing
from app.delivery import service as delivery_service
from app.delivery.models import PauseKind, SendPause
from app.delivery.worker import Worker
from app.letters import service as letters_service
from app.letters.models import FailureClass, Letter, LetterStatus
from tests.delivery.conftest import SmtpServer, drain, letters, relay_settings
from tests.factories import create_deputy, create_letter

REDIS_URL = "redis://127.0.0.1:6379/0"


async def as_a_request(session: AsyncSession) -> None:
    """Begin as a web request that writes does (app.dependencies): on SQLite, with the write
    lock, so that the worker's commits in between cannot make it fail with "database is locked"."""
    await session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})


async def _redis_or_skip() -> pacing.RedisBudget:
    from tests.databases import unavailable

    budget = pacing.RedisBudget(REDIS_URL, prefix=f"appeals-test:{uuid.uuid4().hex}:")
    try:
        await budget.redis.ping()
    except Exception as exc:  # no server
        await budget.close()
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    return budget


@pytest.fixture(params=["database", "redis"])
async def budget_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "redis":
        await (await _redis_or_skip()).close()
    return kind


async def _budget(kind: str) -> pacing.Budget:
    return await _redis_or_skip() if kind == "redis" else pacing.DatabaseBudget()


async def test_token_bucket_grants_the_burst_then_refills(
    engine: AsyncEngine, budget_kind: str
) -> None:
    budget = await _budget(budget_kind)
    try:
        async with engine.begin() as conn:
            assert await budget.take(conn, "domain:a", 10, rate=20, burst=5) == 5
            assert await budget.take(conn, "domain:a", 10, rate=20, burst=5) == 0
            await budget.refund(conn, "domain:a", 2, burst=5)
            assert await budget.take(conn, "domain:a", 10, rate=20, burst=5) == 2
        await asyncio.sleep(0.2)  # 20/s for 0.2 s: four more
        async with engine.begin() as conn:
            assert await budget.take(conn, "domain:a", 10, rate=20, burst=5) in (3, 4, 5)
            assert await budget.take(conn, "domain:b", 1, rate=20, burst=5) == 1
    finally:
        await budget.close()


async def test_slots_are_shared_and_expire(engine: AsyncEngine, budget_kind: str) -> None:
    budget = await _budget(budget_kind)
    try:
        async with engine.begin() as conn:
            await budget.take(conn, "domain:a", 0, rate=1, burst=1)  # the row the slots lock
            assert (
                await budget.acquire_slots(conn, "domain:a", 2, limit=3, holder="w1", ttl=1.0) == 2
            )
            assert (
                await budget.acquire_slots(conn, "domain:a", 2, limit=3, holder="w2", ttl=30) == 1
            )
            # Asking again replaces a holder's own count rather than adding to it.
            assert (
                await budget.acquire_slots(conn, "domain:a", 2, limit=3, holder="w1", ttl=1.0) == 2
            )
        await asyncio.sleep(1.1)  # w1 "crashed": its slots come back when they expire
        async with engine.begin() as conn:
            assert (
                await budget.acquire_slots(conn, "domain:a", 3, limit=3, holder="w3", ttl=30) == 2
            )
            await budget.release_slots(conn, ["domain:a"], holder="w2")
            assert (
                await budget.acquire_slots(conn, "domain:a", 3, limit=3, holder="w3", ttl=30) == 3
            )
    finally:
        await budget.close()


async def test_two_workers_share_the_domain_rate_and_concurrency(
    settings: Settings,
    database_kind: str,
    budget_kind: str,
    smtp_server: SmtpServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    if database_kind != "postgresql":
        pytest.skip("several workers share a queue on PostgreSQL only (SQLite: one writer)")
    rate, n = 40.0, 100
    smtp_server.behaviour = lambda i, _: ("sleep", 0.01, "250 ok")
    worker_settings = relay_settings(
        settings,
        smtp_server.port,
        domain_rate=rate,
        domain_concurrency=3,
        worker_batch_size=10,
        smtp_pool_size=2,
        redis_url=REDIS_URL if budget_kind == "redis" else None,
    )
    deputy = await create_deputy(session, email="deputy@duma.example.org")
    for _ in range(n):
        await create_letter(session, settings=worker_settings, deputy=deputy)
    await session.commit()

    engines = [create_engine(settings.database_url) for _ in range(2)]
    prefix = f"appeals-test:{uuid.uuid4().hex}:"
    workers = [
        Worker(
            worker_settings,
            engine=e,
            budget=pacing.RedisBudget(REDIS_URL, prefix=prefix) if budget_kind == "redis" else None,
        )
        for e in engines
    ]
    started = time.monotonic()
    try:

        async def until_done(w: Worker) -> None:
            while any(r.status != LetterStatus.sent for r in await letters(sessionmaker)):
                await w.run(once=True)
                await asyncio.sleep(0.02)

        await asyncio.wait_for(asyncio.gather(*(until_done(w) for w in workers)), 30)
    finally:
        for w in workers:
            await w.close()
        for e in engines:
            await e.dispose()

    assert sorted(smtp_server.message_ids()) == sorted(
        r.message_id for r in await letters(sessionmaker)
    )
    assert all(w.summary.sent > 0 for w in workers), "both workers must have sent"
    # Combined, never more than the bucket allows since the workers started: its burst (one
    # second's worth, the bucket starts full) plus rate * elapsed time.
    times = sorted(r.at for r in smtp_server.received)
    for i, t in enumerate(times):
        assert i + 1 <= rate + rate * (t - started), f"message {i + 1} too early"
    assert times[-1] - started >= (n - rate) / rate
    # Three connections at most to the domain, across both workers (two each in their pools).
    assert smtp_server.max_active <= 3


async def test_breaker_pauses_a_failing_domain_and_resumes_by_itself(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    failing = {"bad.example.org"}
    calls = {"bad": 0}

    def behaviour(i: int, received: object) -> str:
        rcpt = received.rcpt[0]  # type: ignore[attr-defined]
        if rcpt.endswith("@bad.example.org") and calls["bad"] < 3:
            calls["bad"] += 1
            return "421 4.3.2 try later"
        return "250 ok"

    smtp_server.behaviour = behaviour
    settings = relay_settings(
        delivery_settings,
        smtp_server.port,
        breaker_threshold=3,
        breaker_pause_seconds=0.6,
        smtp_pool_size=1,
        retry_base_seconds=0.01,
        retry_max_seconds=0.01,
    )
    bad = await create_deputy(session, email="x@bad.example.org")
    good = await create_deputy(session, email="y@good.example.org")
    for _ in range(6):
        await create_letter(session, settings=settings, deputy=bad)
        await create_letter(session, settings=settings, deputy=good)
    await session.commit()

    worker = Worker(settings, engine=engine)
    try:
        await worker.run(once=True)
        async with sessionmaker() as s:
            pause = await s.scalar(select(SendPause).where(SendPause.kind == PauseKind.domain))
        assert pause is not None
        assert pause.key in failing
        rows = await letters(sessionmaker)
        good_rows = [r for r in rows if r.recipient_domain == "good.example.org"]
        assert {r.status for r in good_rows} == {LetterStatus.sent}
        assert all(r.status != LetterStatus.sent for r in rows if r not in good_rows)
    finally:
        await worker.close()
    # After the pause runs out, the domain's letters go out by themselves.
    await drain(settings, engine, sessionmaker, timeout=10)
    assert {r.status for r in await letters(sessionmaker)} == {LetterStatus.sent}


async def test_staff_pause_and_resume_a_campaign(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    for campaign_id in (7, 7, 8):
        await create_letter(session, settings=delivery_settings, campaign_id=campaign_id)
    await delivery_service.pause_campaign(session, campaign_id=7, reason="lawyers' review")
    await session.commit()

    await drain(delivery_settings, engine, sessionmaker, until=lambda: _sent_count(sessionmaker, 1))
    async with sessionmaker() as s:
        progress = await delivery_service.campaign_progress(s, campaign_id=7)
        other = await delivery_service.campaign_progress(s, campaign_id=8)
    assert progress.counts == {"queued": 2}
    assert progress.paused
    assert not progress.finished
    assert other.finished
    assert len(smtp_server.received) == 1

    async with sessionmaker() as s:
        assert await delivery_service.resume_campaign(s, campaign_id=7)
        await s.commit()
    await drain(delivery_settings, engine, sessionmaker)
    async with sessionmaker() as s:
        progress = await delivery_service.campaign_progress(s, campaign_id=7)
        assert not await delivery_service.resume_campaign(s, campaign_id=7)
    assert progress.finished
    assert progress.counts == {"sent": 2}


async def _sent_count(sessionmaker: async_sessionmaker[AsyncSession], n: int) -> bool:
    return sum(r.status == LetterStatus.sent for r in await letters(sessionmaker)) >= n


async def test_an_expired_lease_returns_the_letter_to_the_queue(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    letter = await create_letter(session, settings=delivery_settings)
    fresh = await create_letter(session, settings=delivery_settings)
    await session.commit()
    past = utcnow() - dt.timedelta(seconds=1)
    future = utcnow() + dt.timedelta(minutes=5)
    async with sessionmaker() as s:
        for letter_id, until in ((letter.id, past), (fresh.id, future)):
            await s.execute(
                update(Letter)
                .where(Letter.id == letter_id)
                .values(status=LetterStatus.sending, lease_owner="dead", lease_expires_at=until)
            )
        await s.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        summary = await worker.run(once=True)
    finally:
        await worker.close()
    assert summary.requeued == 1
    rows = {r.id: r for r in await letters(sessionmaker)}
    assert rows[letter.id].status == LetterStatus.sent
    # A live lease (another worker is sending it) is left alone.
    assert rows[fresh.id].status == LetterStatus.sending
    assert smtp_server.message_ids() == [letter.message_id]


async def test_relay_breaker_sets_a_shared_pause(
    delivery_settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    down = SmtpServer()
    await down.start()
    await down.stop()
    settings = relay_settings(delivery_settings, down.port, breaker_threshold=2, smtp_pool_size=1)
    for _ in range(5):
        await create_letter(session, settings=settings)
    await session.commit()
    worker = Worker(settings, engine=engine)
    try:
        await worker.run(once=True)
    finally:
        await worker.close()
    async with sessionmaker() as s:
        pauses = await delivery_service.list_pauses(s)
    assert [(p.kind, p.key) for p in pauses] == [(PauseKind.relay, f"127.0.0.1:{down.port}")]
    rows = await letters(sessionmaker)
    # Two attempts opened the breaker; the rest of the batch went back unattempted.
    assert sorted(r.attempts for r in rows) == [0, 0, 0, 1, 1]
    assert sum(r.failure_class == FailureClass.connection for r in rows) == 2


async def test_a_version_withdrawn_while_on_the_wire_is_held_not_retried(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: ("sleep", 0.4, "451 4.7.1 try later")
    await create_letter(session, settings=delivery_settings, appeal_version_id=5)
    await session.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        run = asyncio.create_task(worker.run(once=True))
        while not smtp_server.received:
            await asyncio.sleep(0.01)
        # The lawyers withdraw the version while the letter is on the wire.
        async with sessionmaker() as s:
            await as_a_request(s)
            assert await letters_service.hold_version_letters(s, appeal_version_id=5) == 0
            await s.commit()
        await run
    finally:
        await worker.close()
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.held
    assert row.last_error == "451 4.7.1 try later"

    async with sessionmaker() as s:
        await as_a_request(s)
        assert await letters_service.release_version_letters(s, appeal_version_id=5) == 1
        await s.commit()
    smtp_server.behaviour = None
    await drain(delivery_settings, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.sent


async def test_a_cancelled_version_is_never_claimed_again(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    letter = await create_letter(session, settings=delivery_settings, appeal_version_id=6)
    await session.commit()
    async with sessionmaker() as s:
        await as_a_request(s)
        assert await letters_service.cancel_version_letters(s, appeal_version_id=6) == 1
        # A straggler (say, requeued after a worker died) must still not go out.
        await s.execute(
            update(Letter).where(Letter.id == letter.id).values(status=LetterStatus.queued)
        )
        await s.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        await worker.run(once=True)
    finally:
        await worker.close()
    assert smtp_server.received == []


async def test_a_letter_cancelled_while_on_the_wire_is_not_retried(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    smtp_server.behaviour = lambda n, _: ("sleep", 0.4, "451 4.7.1 try later")
    letter = await create_letter(session, settings=delivery_settings)
    await session.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        run = asyncio.create_task(worker.run(once=True))
        while not smtp_server.received:
            await asyncio.sleep(0.01)
        async with sessionmaker() as s:
            await as_a_request(s)
            assert await letters_service.cancel_letters(s, letter_ids=[letter.id]) == 0
            await s.commit()
        await run
    finally:
        await worker.close()
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.cancelled
    assert row.finished_at is not None
    async with sessionmaker() as s:
        assert list(await s.scalars(select(SendPause))) == []  # the request is done with


async def test_a_cancelled_letter_stranded_by_a_dead_worker_is_cancelled_not_requeued(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    letter = await create_letter(session, settings=delivery_settings)
    letter.status = LetterStatus.sending
    letter.lease_owner = "dead"
    letter.lease_expires_at = utcnow() + dt.timedelta(seconds=0.2)
    await session.commit()
    async with sessionmaker() as s:
        await as_a_request(s)
        assert await letters_service.cancel_letters(s, letter_ids=[letter.id]) == 0
        await s.commit()
    await asyncio.sleep(0.3)
    worker = Worker(delivery_settings, engine=engine)
    try:
        summary = await worker.run(once=True)
    finally:
        await worker.close()
    assert summary.requeued == 0
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.cancelled
    assert smtp_server.received == []


async def test_a_cancellation_that_arrives_just_after_the_record_still_applies(
    delivery_settings: Settings,
    smtp_server: SmtpServer,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    # The citizen's request was written while the letter was on the wire; the worker recorded
    # it as deferred before the request was committed.
    letter = await create_letter(session, settings=delivery_settings)
    letter.status = LetterStatus.deferred
    await session.commit()
    async with sessionmaker() as s:
        await delivery_service.stop_letters(s, letter_ids=[letter.id])
        await s.commit()
    worker = Worker(delivery_settings, engine=engine)
    try:
        await worker.run(once=True)
    finally:
        await worker.close()
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.cancelled
    assert smtp_server.received == []
    async with sessionmaker() as s:
        assert list(await s.scalars(select(SendPause))) == []
