"""`appeals worker` killed with SIGKILL again and again during a drain, with the default batch,
pool and record settings: each kill doubles at most the letters delivered but not yet recorded,
which the record step keeps to a handful (record.UNRECORDED_PER_CONNECTION per connection, plus
those on the wire)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.letters.models import Letter, LetterStatus
from tests.delivery.conftest import APPEALS, SmtpServer, letters, queue_copies, worker_env

LETTERS = 2000
KILLS = 3
TARGET = 50  # letters doubled per kill at most (issue 16)


async def _sending_ids(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Letter.message_id).where(Letter.status == LetterStatus.sending)
        )
        return set(rows)


async def test_each_sigkill_doubles_at_most_a_handful(
    settings: Settings,
    smtp_server: SmtpServer,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await queue_copies(settings.database_url, settings, n=LETTERS, domains=4)
    smtp_server.behaviour = lambda n, _: ("sleep", 0.001, "250 ok")
    # The defaults of batch (500), pool (4) and recording; no pacing in the way.
    env = worker_env(settings, smtp_server.port)
    for name in ("APPEALS_SMTP_POOL_SIZE", "APPEALS_SMTP_TIMEOUT"):
        del env[name]
    env["APPEALS_DOMAIN_CONCURRENCY"] = "4"

    doubled: list[int] = []
    at_risk: set[str] = set()
    for _ in range(KILLS):
        worker = await asyncio.create_subprocess_exec(APPEALS, "worker", env=env)
        target = len(smtp_server.received) + 300
        deadline = time.monotonic() + 30
        while len(smtp_server.received) < target:
            assert worker.returncode is None, "the worker exited early"
            assert time.monotonic() < deadline, "the worker sent too little"
            await asyncio.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
        assert await worker.wait() == -signal.SIGKILL
        await asyncio.sleep(0.2)  # what was on the wire reaches the relay, or never will
        # Delivered, and still `sending`: these go out again once their lease runs out (less
        # those of an earlier kill whose lease has not run out yet).
        this_kill = set(smtp_server.message_ids()) & await _sending_ids(sessionmaker) - at_risk
        doubled.append(len(this_kill))
        at_risk |= this_kill

    last = await asyncio.create_subprocess_exec(APPEALS, "worker", env=env)
    try:
        deadline = time.monotonic() + 40
        while any(r.status != LetterStatus.sent for r in await letters(sessionmaker)):
            assert last.returncode is None, "the worker exited early"
            assert time.monotonic() < deadline, "letters still unsent"
            await asyncio.sleep(0.2)
    finally:
        last.send_signal(signal.SIGTERM)
        await asyncio.wait_for(last.wait(), 30)

    counts = Counter(smtp_server.message_ids())
    assert set(counts) == {r.message_id for r in await letters(sessionmaker)}  # none lost
    duplicates = sum(n - 1 for n in counts.values())
    assert all(n <= TARGET for n in doubled), doubled
    assert duplicates <= sum(doubled), (duplicates, doubled)
