"""Leases: a claimed letter belongs to its worker until the lease runs out. The worker extends
the leases of the letters it holds a few times per lease; any worker returns letters whose lease
ran out (their worker died) to the queue."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy import Table, select, update

from app.db import utcnow
from app.delivery import pacing
from app.delivery.worker.context import WorkerContext
from app.letters.models import FailureClass, Letter, LetterStatus

logger = logging.getLogger("appeals.delivery")
LETTER: Table = Letter.__table__  # type: ignore[assignment]


async def renew_leases(ctx: WorkerContext) -> None:
    """Extend the lease of every letter this worker holds, a few times per lease."""
    period = max(0.5, ctx.settings.lease_seconds / 3)
    while True:
        await asyncio.sleep(period)
        until = utcnow() + dt.timedelta(seconds=ctx.settings.lease_seconds)
        with contextlib.suppress(Exception):
            await _renew(ctx, until)


async def _renew(ctx: WorkerContext, until: dt.datetime) -> None:
    async with ctx.write() as conn:
        await conn.execute(
            update(LETTER)
            .where(
                LETTER.c.lease_owner == ctx.name,
                LETTER.c.status == LetterStatus.sending,
            )
            .values(lease_expires_at=until)
        )


async def requeue_expired(ctx: WorkerContext) -> int:
    """Return letters whose lease ran out (their worker died) to the queue; those their
    citizens cancelled meanwhile are cancelled instead."""
    now = utcnow()
    async with ctx.write() as conn:
        expired = [LETTER.c.status == LetterStatus.sending, LETTER.c.lease_expires_at < now]
        stranded = await conn.scalars(select(LETTER.c.id).where(*expired))
        cancelled = await pacing.cancelled_letters(conn, list(stranded))
        if cancelled:
            await conn.execute(
                update(LETTER)
                .where(*expired, LETTER.c.id.in_(cancelled))
                .values(
                    status=LetterStatus.cancelled,
                    lease_owner=None,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
            )
            await pacing.forget_letters(conn, cancelled)
        result = await conn.execute(
            update(LETTER)
            .where(LETTER.c.status == LetterStatus.sending, LETTER.c.lease_expires_at < now)
            .values(
                status=LetterStatus.queued,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                updated_at=now,
                last_error="lease expired while sending: outcome unknown",
                failure_class=FailureClass.unknown,
            )
        )
    count = int(result.rowcount)
    if count:
        logger.warning("returned %d letters with an expired lease to the queue", count)
    return count
