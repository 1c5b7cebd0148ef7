"""Leases: a claimed letter belongs to its worker until the lease runs out. The worker extends
the leases of the letters it holds in hand (and of no other letter) a few times per lease; any
worker returns letters whose lease ran out (their worker died) to the queue, and a worker gives
back at once the letters leased to it that it does not hold (a claim whose commit was lost)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import Integer, Table, any_, bindparam, or_, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY

from app.db import utcnow
from app.delivery import pacing
from app.delivery.worker.context import WorkerContext
from app.letters.models import FailureClass, Letter, LetterStatus

logger = logging.getLogger("appeals.delivery")
LETTER: Table = Letter.__table__  # type: ignore[assignment]


async def keep_renewed(ctx: WorkerContext) -> None:
    """Extend the leases of the letters in hand, a few times per lease, until cancelled."""
    period = max(0.5, ctx.settings.lease_seconds / 3)
    while True:
        await asyncio.sleep(period)
        if not ctx.held:
            continue
        started = ctx.outage.clock()
        try:
            await renew(ctx)
        except Exception as exc:  # the database is away: the next period tries again
            ctx.outage.failed(exc, started)
        else:
            ctx.outage.succeeded(started)


async def renew(ctx: WorkerContext) -> None:
    """Extend the leases of the letters in hand."""
    ids = list(ctx.held)
    if not ids:
        return
    until = utcnow() + dt.timedelta(seconds=ctx.settings.lease_seconds)
    async with ctx.write() as conn:
        await conn.execute(
            update(LETTER)
            .where(
                _among(ctx, ids),
                LETTER.c.lease_owner == ctx.name,
                LETTER.c.status == LetterStatus.sending,
            )
            .values(lease_expires_at=until)
        )


def _among(ctx: WorkerContext, ids: list[int]) -> Any:
    # PostgreSQL: one array parameter, rather than hundreds expanded into the SQL each time.
    if ctx.is_sqlite:
        return LETTER.c.id.in_(ids)
    return LETTER.c.id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))


def _not_held(ctx: WorkerContext) -> Any:
    """Not a letter this worker has in hand (whose lease may have run out in an outage)."""
    if not ctx.held:
        return true()
    return or_(LETTER.c.lease_owner != ctx.name, ~_among(ctx, list(ctx.held)))


async def release_strays(ctx: WorkerContext) -> int:
    """Give back, unsent, letters leased to this worker that it does not hold: a claim whose
    COMMIT was cut off may have committed without the worker hearing of it."""
    now = utcnow()
    async with ctx.write() as conn:
        result = await conn.execute(
            update(LETTER)
            .where(
                LETTER.c.lease_owner == ctx.name,
                LETTER.c.status == LetterStatus.sending,
                _not_held(ctx),
            )
            .values(
                status=LetterStatus.queued,
                attempts=LETTER.c.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    count = int(result.rowcount)
    if count:
        logger.warning("gave back %d letters claimed when the database went away", count)
    return count


async def requeue_expired(ctx: WorkerContext) -> int:
    """Return letters whose lease ran out (their worker died) to the queue; those their
    citizens cancelled meanwhile are cancelled instead."""
    now = utcnow()
    async with ctx.write() as conn:
        expired = [
            LETTER.c.status == LetterStatus.sending,
            LETTER.c.lease_expires_at < now,
            _not_held(ctx),
        ]
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
            .where(*expired)
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
