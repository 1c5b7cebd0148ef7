"""The worker while PostgreSQL restarts under it, on a server of the test's own (tests.pg_server):
what it learnt from the relay is recorded once the database is back, nothing stays `sending`,
and no letter goes out twice but those on the wire at the moment of the restart."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import func, select, text

from app.config import Settings
from app.db import create_engine
from app.delivery.worker import Worker
from app.letters.models import Letter, LetterStatus
from tests.delivery.conftest import SmtpServer, queue_copies, relay_settings
from tests.pg_server import OwnPostgres, create_migrated_database

LETTERS = 1500


async def _statuses(url: str) -> Counter[str]:
    """Letters by status, waiting for the database if it is away."""
    engine = create_engine(url)
    try:
        while True:
            try:
                async with engine.connect() as conn:
                    rows = await conn.execute(
                        select(Letter.status, func.count()).group_by(Letter.status)
                    )
                    return Counter({str(s): int(n) for s, n in rows.all()})
            except Exception:  # away for a moment: ask again
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def test_a_restart_and_an_outage_mid_drain_lose_nothing_and_double_at_most_the_wire(
    own_pg: OwnPostgres, smtp_server: SmtpServer
) -> None:
    url = await create_migrated_database(own_pg)
    worker_settings = relay_settings(
        Settings(environment="test", database_url=url, secret_key="t" * 40),
        smtp_server.port,
        smtp_pool_size=4,
        worker_batch_size=500,
        lease_seconds=3.0,
        smtp_timeout=5.0,
    )
    await queue_copies(url, worker_settings, n=LETTERS, domains=4)
    # A millisecond per message: the drain lasts a few seconds, long enough to restart under.
    smtp_server.behaviour = lambda n, _: ("sleep", 0.001, "250 ok")

    worker = Worker(worker_settings)
    run = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 30
        while len(smtp_server.received) < LETTERS // 5:
            assert not run.done(), "the worker stopped"
            assert time.monotonic() < deadline, "the worker sent too little"
            await asyncio.sleep(0.01)
        # A restart (every session ended at once), then, a moment later, an outage.
        await asyncio.to_thread(own_pg.restart)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(own_pg.stop)
        at_outage = len(smtp_server.received)
        await asyncio.sleep(2.0)
        # While the database is away the worker holds what it learnt in memory, and sends no
        # more once its limit of outcomes wait (a lane may have one more on the wire).
        sent_in_outage = len(smtp_server.received) - at_outage
        assert sent_in_outage <= worker.recorder.max_unrecorded + worker_settings.smtp_pool_size
        await asyncio.to_thread(own_pg.start)

        deadline = time.monotonic() + 40
        while (await _statuses(url)).get(LetterStatus.sent, 0) < LETTERS:
            assert not run.done(), "the worker stopped"
            assert time.monotonic() < deadline, f"not all sent: {await _statuses(url)}"
            await asyncio.sleep(0.2)
    finally:
        worker.stop()
        await run
        await worker.close()

    assert await _statuses(url) == Counter({LetterStatus.sent: LETTERS})
    engine = create_engine(url)
    async with engine.connect() as conn:
        message_ids = set(await conn.scalars(select(Letter.message_id)))
        counted_sent = await conn.scalar(
            text("SELECT sum(n) FROM stats_total WHERE status = 'sent'")
        )
        attempts = Counter(await conn.scalars(select(Letter.attempts)))
    await engine.dispose()
    received = Counter(smtp_server.message_ids())
    assert set(received) == message_ids  # every letter reached the relay
    # Each recorded sent once: by this worker, and in the statistics' counters.
    assert worker.summary.sent == LETTERS
    assert counted_sent == LETTERS
    # No letter went out twice but those on the wire when the connections were cut, at most
    # one per connection for the restart and one for the outage.
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= 2 * worker_settings.smtp_pool_size
    assert set(attempts) <= {1, 2}
