"""The claim step: in one write transaction (BEGIN IMMEDIATE on SQLite; on PostgreSQL row locks
with FOR UPDATE SKIP LOCKED, so any number of workers share the queue), take tokens from the
shared buckets and concurrency slots, move that many due letters per domain to `sending` under
this worker's lease, and give back the slots of domains this worker is done with. Once that
commits, the letters are in hand (`WorkerContext.held`) until their outcome is recorded; their
messages are read after the commit."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Integer, Table, and_, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import utcnow
from app.delivery import pacing
from app.delivery.smtp import NO_REPLY_AFTER_DATA
from app.delivery.worker.batches import RELAY, Batch, Claimed, CycleState
from app.delivery.worker.context import WorkerContext, burst
from app.letters.models import (
    CLAIMABLE,
    FINAL,
    FailureClass,
    Letter,
    LetterMessage,
    LetterStatus,
    sources,
)

LETTER: Table = Letter.__table__  # type: ignore[assignment]
MESSAGE: Table = LetterMessage.__table__  # type: ignore[assignment]

DUE_REFRESH_SECONDS = 1.0


class Claimer:
    def __init__(
        self, ctx: WorkerContext, *, halted: Callable[[str], bool], connections: int
    ) -> None:
        self.ctx = ctx
        self.halted = halted  # the breaker's halts in this worker (send.Halts)
        self.connections = connections  # the size of the worker's relay pool
        self._due_cache: dict[str, int] = {}
        self._due_at = 0.0

    async def claim(
        self, *, in_flight: frozenset[str] = frozenset(), release: frozenset[str] = frozenset()
    ) -> Batch:
        """Claim due letters, domain by domain, as far as tokens and slots allow (without their
        messages: see with_messages). `in_flight`: domains of the batch now on the wire, whose
        slots must be kept; `release`: domains whose slots this worker no longer needs, unless
        the new batch does."""
        ctx = self.ctx
        async with ctx.write() as conn:
            batch = await self._claim(conn, in_flight)
            unused = release - in_flight - set(batch.slots)
            if unused:
                keys = [pacing.domain_key(d) for d in sorted(unused)]
                await ctx.budget.release_slots(conn, keys, holder=ctx.name)
        # Committed: in hand from now on, whatever happens to the database.
        for letter in batch.claimed:
            ctx.held[letter.id] = letter
        return batch

    async def _claim(self, conn: AsyncConnection, in_flight: frozenset[str]) -> Batch:
        ctx = self.ctx
        s = ctx.settings
        budget = ctx.budget
        claimed: list[Claimed] = []
        slots: dict[str, int] = {}
        pauses = await pacing.active_pauses(conn)
        if ctx.relay.name in pauses.relays or self.halted(RELAY):
            return Batch.empty(CycleState.paused)
        now = utcnow()
        if pauses.letters:
            await self._cancel_requested(conn, pauses.letters, now)
        due_filter = [
            LETTER.c.status.in_(CLAIMABLE),
            LETTER.c.next_attempt_at <= now,
        ]
        if pauses.campaigns:
            due_filter.append(LETTER.c.campaign_id.not_in(pauses.campaigns))
        if pauses.versions:
            due_filter.append(LETTER.c.appeal_version_id.not_in(pauses.versions))
        due = {
            d: n
            for d, n in (await self._due(conn, due_filter)).items()
            if d not in pauses.domains and not self.halted(d)
        }
        if not due:
            return Batch.empty()
        global_left = await budget.take(
            conn, pacing.GLOBAL, s.worker_batch_size, rate=s.send_rate, burst=burst(s.send_rate)
        )
        granted_global = global_left
        for domain in sorted(due):
            if global_left <= 0:
                break
            key = pacing.domain_key(domain)
            want = min(due[domain], global_left)
            tokens = await budget.take(
                conn, key, want, rate=s.domain_rate, burst=burst(s.domain_rate)
            )
            if tokens == 0:
                continue
            held = await budget.acquire_slots(
                conn,
                key,
                # Never hoard slots this worker's pool cannot use: other workers need them.
                min(s.domain_concurrency, self.connections),
                limit=s.domain_concurrency,
                holder=ctx.name,
                ttl=s.lease_seconds,
            )
            rows = await self._claim_domain(conn, domain, tokens, due_filter, now) if held else []
            await budget.refund(conn, key, tokens - len(rows), burst=burst(s.domain_rate))
            left = self._due_cache.get(domain, 0) - len(rows)
            if len(rows) < tokens or left <= 0:
                self._due_cache.pop(domain, None)  # drained (or taken by another worker)
            else:
                self._due_cache[domain] = left
            if rows:
                slots[domain] = held
                claimed += rows
                global_left -= len(rows)
            elif held and domain not in in_flight:
                await budget.release_slots(conn, [key], holder=ctx.name)
        await budget.refund(
            conn, pacing.GLOBAL, granted_global - len(claimed), burst=burst(s.send_rate)
        )
        return Batch(claimed, slots, CycleState.worked if claimed else CycleState.throttled)

    async def _cancel_requested(
        self, conn: AsyncConnection, letter_ids: set[int], now: dt.datetime
    ) -> None:
        """Apply cancellations that reached a letter just after its worker recorded it."""
        await conn.execute(
            update(LETTER)
            .where(
                LETTER.c.id.in_(letter_ids),
                LETTER.c.status.in_(sources(LetterStatus.cancelled) - {LetterStatus.sending}),
            )
            .values(status=LetterStatus.cancelled, finished_at=now, updated_at=now)
        )
        final = await conn.scalars(
            select(LETTER.c.id).where(LETTER.c.id.in_(letter_ids), LETTER.c.status.in_(FINAL))
        )
        await pacing.forget_letters(conn, set(final))

    async def _due(self, conn: AsyncConnection, due_filter: list[Any]) -> dict[str, int]:
        """Due letters per domain. Counting scans every due row, so the counts are kept and
        decremented between refreshes (at most once a second, or when they run out); a stale
        count only makes a claim come back short."""
        fresh = time.monotonic() - self._due_at < DUE_REFRESH_SECONDS
        if not (fresh and self._due_cache):
            rows = await conn.execute(
                select(LETTER.c.recipient_domain, func.count())
                .where(*due_filter)
                .group_by(LETTER.c.recipient_domain)
            )
            self._due_cache = {d: int(n) for d, n in rows.all()}
            self._due_at = time.monotonic()
        return self._due_cache

    async def _claim_domain(
        self,
        conn: AsyncConnection,
        domain: str,
        limit: int,
        due_filter: list[Any],
        now: dt.datetime,
    ) -> list[Claimed]:
        # One status at a time (retries first), so that the index on (domain, status,
        # next_attempt_at) yields the rows in order and the claim never sorts the whole queue.
        claimed: list[Claimed] = []
        for status in (LetterStatus.deferred, LetterStatus.queued):
            if len(claimed) < limit:
                claimed += await self._claim_status(
                    conn, domain, status, limit - len(claimed), due_filter, now
                )
        return claimed

    async def _claim_status(
        self,
        conn: AsyncConnection,
        domain: str,
        status: LetterStatus,
        limit: int,
        due_filter: list[Any],
        now: dt.datetime,
    ) -> list[Claimed]:
        picked = (
            select(LETTER.c.id)
            .where(LETTER.c.recipient_domain == domain, LETTER.c.status == status, *due_filter)
            .order_by(LETTER.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            # A materialized CTE runs once: a subquery under IN may be run again by the planner
            # and lock other rows than those it returned.
            .cte("picked")
            .prefix_with("MATERIALIZED")
        )
        result = await conn.execute(
            update(LETTER)
            # The status again: a row changed since the pick (another worker) is not taken.
            .where(LETTER.c.id == picked.c.id, LETTER.c.status == status)
            .values(
                status=LetterStatus.sending,
                lease_owner=self.ctx.name,
                lease_expires_at=now + dt.timedelta(seconds=self.ctx.settings.lease_seconds),
                attempts=LETTER.c.attempts + 1,
                first_attempt_at=func.coalesce(LETTER.c.first_attempt_at, now),
                updated_at=now,
            )
            .returning(
                LETTER.c.id,
                LETTER.c.recipient_email,
                LETTER.c.attempts,
                LETTER.c.first_attempt_at,
                LETTER.c.appeal_version_id,
                # Not changed by this UPDATE: what the previous attempt said.
                and_(
                    LETTER.c.failure_class == FailureClass.unknown,
                    LETTER.c.last_error.startswith(NO_REPLY_AFTER_DATA, autoescape=True),
                ).label("unknown_before"),
            )
        )
        rows = sorted(result.all(), key=lambda r: r.id)
        # The message bytes are read after the claim commits (see with_messages).
        return [
            Claimed(
                r.id,
                r.recipient_email,
                domain,
                b"",
                r.attempts,
                r.first_attempt_at,
                r.appeal_version_id,
                bool(r.unknown_before),
            )
            for r in rows
        ]

    async def with_messages(self, claimed: list[Claimed]) -> list[Claimed]:
        """Fill in the message bytes of claimed letters, outside the claim's transaction: it
        then holds SQLite's write lock (and, on PostgreSQL, the statistics rows its trigger
        updated) for less time. The letters are leased to this worker, and their messages are
        only ever deleted once they are final, so nothing can change them meanwhile."""
        if not claimed:
            return claimed
        ids = [c.id for c in claimed]
        # PostgreSQL: one array parameter, rather than hundreds expanded into the SQL each time.
        match = (
            MESSAGE.c.letter_id.in_(ids)
            if self.ctx.is_sqlite
            else MESSAGE.c.letter_id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
        )
        async with self.ctx.engine.connect() as conn:
            rows = await conn.execute(select(MESSAGE.c.letter_id, MESSAGE.c.message).where(match))
            bodies = dict(rows.all())
        for letter in claimed:
            letter.message = bodies[letter.id]
        return claimed
