"""`appeals worker` (the send worker and the confirmation sender) while its PostgreSQL is stopped
for a few seconds, on a server of the test's own (tests.pg_server): each loop logs the outage
once and the recovery once, no ERROR line, and both go on sending by themselves afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time

from sqlalchemy import func, insert, select

from app.config import Settings
from app.db import create_engine, create_sessionmaker, utcnow
from app.letters import mailer
from app.letters.submissions import ConfirmationEmail
from tests.delivery.conftest import APPEALS, SmtpServer, worker_env
from tests.factories import create_letter
from tests.pg_server import OwnPostgres, create_migrated_database

OUTAGE_SECONDS = 3.0


async def _queue_both(url: str, settings: Settings, n: int) -> None:
    """A letter and a confirmation e-mail."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            await create_letter(session, settings=settings, sender_email=f"s{n}@example.org")
            await session.execute(
                insert(ConfirmationEmail).values(
                    mailer.confirmation_row(
                        to=f"citizen{n}@example.org",
                        subject="Подтвердите",
                        body="ссылка\n",
                        expires_at=utcnow() + dt.timedelta(hours=1),
                    )
                )
            )
            await session.commit()
    finally:
        await engine.dispose()


async def _until_received(smtp_server: SmtpServer, n: int, process: object) -> None:
    deadline = time.monotonic() + 20
    while len(smtp_server.received) < n:
        assert getattr(process, "returncode", None) is None, "the worker exited"
        assert time.monotonic() < deadline, f"{len(smtp_server.received)} of {n} received"
        await asyncio.sleep(0.05)


async def test_a_database_outage_is_logged_once_and_both_loops_recover(
    own_pg: OwnPostgres, smtp_server: SmtpServer
) -> None:
    url = await create_migrated_database(own_pg)
    settings = Settings(environment="test", database_url=url, secret_key="t" * 40)
    env = worker_env(settings, smtp_server.port, APPEALS_WORKER_POLL_SECONDS="0.2")
    await _queue_both(url, settings, 1)
    worker = await asyncio.create_subprocess_exec(
        APPEALS, "worker", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await _until_received(smtp_server, 2, worker)  # both loops are at work
        await asyncio.to_thread(own_pg.stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(own_pg.start)
        await _queue_both(url, settings, 2)
        await _until_received(smtp_server, 4, worker)  # both recovered by themselves
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0
    lines = stderr.decode().splitlines()
    assert [line for line in lines if line.startswith(("ERROR", "CRITICAL"))] == []
    for who in ("worker", "confirmation sender"):
        down = [line for line in lines if f"{who}: database unreachable" in line]
        back = [line for line in lines if f"{who}: database reachable again" in line]
        assert len(down) == 1, "\n".join(lines)
        assert down[0].startswith("WARNING")
        assert len(back) == 1, lines
    engine = create_engine(url)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ConfirmationEmail)) == 0
    await engine.dispose()
