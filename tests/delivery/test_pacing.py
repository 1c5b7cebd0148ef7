"""Pacing shared by all workers (database or Redis), concurrency slots, breaker, pauses."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine
from app.delivery import pacing
from app.delivery import service as delivery_service
from app.delivery.models import PauseKind, SendPause
from app.delivery.worker import Worker
from app.letters.models import FailureClass, LetterStatus
from tests.delivery.conftest import SmtpServer, drain, letters, relay_settings
from tests.factories import create_deputy, create_letter

REDIS_URL = "redis://127.0.0.1:6379/0"


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
