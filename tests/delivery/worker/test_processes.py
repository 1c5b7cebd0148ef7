"""Real `appeals worker` processes: killed with SIGKILL mid-batch, and four sharing one queue."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.letters.models import Letter, LetterStatus
from tests.delivery.conftest import APPEALS, SmtpServer, letters, worker_env
from tests.factories import create_deputy, create_letter


async def _queue(session: AsyncSession, settings: Settings, n: int, domains: int = 1) -> None:
    deputies = [
        await create_deputy(session, email=f"deputy{i}@duma{i}.example.org") for i in range(domains)
    ]
    for i in range(n):
        await create_letter(session, settings=settings, deputy=deputies[i % domains])
    await session.commit()


async def _in_status(sessionmaker: async_sessionmaker[AsyncSession], status: LetterStatus) -> int:
    async with sessionmaker() as session:
        n = await session.scalar(
            select(func.count()).select_from(Letter).where(Letter.status == status)
        )
    return int(n or 0)


async def test_sigkill_mid_batch_loses_nothing_and_duplicates_at_most_in_flight(
    settings: Settings,
    smtp_server: SmtpServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    # Each message takes the server 5 ms: the worker is surely mid-batch when it is killed.
    smtp_server.behaviour = lambda n, _: ("sleep", 0.005, "250 ok")
    await _queue(session, settings, 300)
    env = worker_env(settings, smtp_server.port, APPEALS_WORKER_BATCH_SIZE="40")
    worker = await asyncio.create_subprocess_exec(APPEALS, "worker", env=env)
    deadline = time.monotonic() + 30
    while len(smtp_server.received) < 80:
        assert worker.returncode is None, "the worker exited early"
        assert time.monotonic() < deadline, "the worker sent too little"
        await asyncio.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    assert await worker.wait() == -signal.SIGKILL
    in_flight = await _in_status(sessionmaker, LetterStatus.sending)
    assert 0 < in_flight <= 80  # two batches at most: one on the wire, one claimed
    assert await _in_status(sessionmaker, LetterStatus.queued) > 0

    # A restarted worker waits out the dead one's lease, then delivers the rest.
    await asyncio.sleep(2.1)
    restarted = await asyncio.create_subprocess_exec(
        APPEALS, "worker", "--once", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(restarted.communicate(), timeout=60)
    assert restarted.returncode == 0
    assert b"lease-expired requeued" in out

    rows = await letters(sessionmaker)
    assert {r.status for r in rows} == {LetterStatus.sent}
    counts = Counter(smtp_server.message_ids())
    assert set(counts) == {r.message_id for r in rows}  # no letter lost
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= in_flight


async def test_four_workers_on_postgresql_never_send_a_letter_twice(
    settings: Settings,
    database_kind: str,
    smtp_server: SmtpServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    if database_kind != "postgresql":
        pytest.skip("several workers share a queue on PostgreSQL only (SQLite: one writer)")
    smtp_server.behaviour = lambda n, _: ("sleep", 0.002, "250 ok")
    await _queue(session, settings, 600, domains=3)
    env = worker_env(settings, smtp_server.port, APPEALS_WORKER_BATCH_SIZE="25")
    workers = [
        await asyncio.create_subprocess_exec(
            APPEALS, "worker", "--once", env=env, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 90)
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    rows = await letters(sessionmaker)
    assert {r.status for r in rows} == {LetterStatus.sent}
    counts = Counter(smtp_server.message_ids())
    assert set(counts) == {r.message_id for r in rows}
    assert max(counts.values()) == 1
    # The work was shared: more than one process sent letters.
    sent_by = [int(out.split(b"sent ")[1].split(b",")[0]) for out, _ in outputs]
    assert sum(sent_by) == 600
    assert sum(1 for n in sent_by if n > 0) >= 2
