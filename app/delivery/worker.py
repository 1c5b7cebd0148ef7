"""The send worker: claim due letters under a lease, send them over the relay pool, record.

One cycle: (1) in one transaction (BEGIN IMMEDIATE on SQLite; on PostgreSQL row locks with
FOR UPDATE SKIP LOCKED, so any number of workers share the queue), take tokens from the shared
buckets and claim that many due letters per domain, moving them to `sending` with this worker's
lease; (2) send them over up to `smtp_pool_size` persistent connections, at most the granted
slots per domain at once; (3) record every outcome in one executemany. A worker that dies
mid-batch leaves `sending` letters whose lease runs out; any worker returns them to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db import create_engine, utcnow
from app.delivery import pacing
from app.delivery.models import PauseKind
from app.delivery.purge import purge
from app.delivery.smtp import Attempt, Connection, Outcome, Relay
from app.letters.models import ALLOWED, CLAIMABLE, FailureClass, Letter, LetterStatus

logger = logging.getLogger("appeals.delivery")
LETTER: Table = Letter.__table__  # type: ignore[assignment]

# What the record step writes must be allowed from `sending` by the state machine.
assert {LetterStatus.sent, LetterStatus.deferred, LetterStatus.failed, LetterStatus.queued} <= (
    ALLOWED[LetterStatus.sending]
)


@dataclass(slots=True)
class Claimed:
    id: int
    recipient: str
    domain: str
    message: bytes
    attempts: int
    first_attempt_at: dt.datetime


@dataclass(slots=True)
class Result:
    letter: Claimed
    attempt: Attempt | None  # None: released unsent (breaker opened, worker stopping)


class CycleState(StrEnum):
    worked = "worked"  # letters were claimed and processed
    throttled = "throttled"  # due letters wait for tokens or slots
    paused = "paused"  # the relay is paused
    idle = "idle"  # nothing due


@dataclass
class Summary:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    released: int = 0
    requeued: int = 0
    purged: int = 0
    by_class: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"sent {self.sent}, deferred {self.deferred}, failed {self.failed}, "
            f"released {self.released}, lease-expired requeued {self.requeued}, "
            f"purged {self.purged}"
        )


def make_budget(settings: Settings) -> pacing.Budget:
    if settings.redis_url:
        return pacing.RedisBudget(settings.redis_url)
    return pacing.DatabaseBudget()


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        name: str | None = None,
        budget: pacing.Budget | None = None,
    ) -> None:
        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine or create_engine(settings.database_url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.relay = Relay.from_settings(settings)
        self.connections = [Connection(self.relay) for _ in range(max(1, self.relay.pool_size))]
        self.budget = budget or make_budget(settings)
        self.breaker = pacing.Breaker(
            threshold=settings.breaker_threshold, pause_seconds=settings.breaker_pause_seconds
        )
        self.stopping = asyncio.Event()
        self.summary = Summary()
        self._last_requeue = 0.0
        self._last_purge = 0.0
        self._halted_domains: set[str] = set()
        self._relay_halted = False

    # -- transactions -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _write(self) -> Any:
        """A write transaction; BEGIN IMMEDIATE on SQLite so that it never upgrades mid-way."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn

    # -- the loop -----------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    async def run(self, *, once: bool = False) -> Summary:
        """Cycle until stopped (or, with once, until nothing is due); returns the totals.

        The caller closes the worker (`close()`) when done with it.
        """
        while not self.stopping.is_set():
            try:
                await self._housekeeping()
                state = await self.cycle()
            except Exception as exc:
                if once:
                    raise
                # Database down and the like: log the type only (parameters carry data); the
                # leases bring back whatever this cycle had claimed.
                logger.error("worker cycle failed: %s; retrying", type(exc).__name__)
                state = CycleState.throttled
            if state is CycleState.worked:
                continue
            if once and state in (CycleState.idle, CycleState.paused):
                break
            delay = (
                min(0.05, self.settings.worker_poll_seconds)
                if state is CycleState.throttled
                else self.settings.worker_poll_seconds
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
        return self.summary

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)
        await self.budget.close()
        if self._own_engine:
            await self.engine.dispose()

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_requeue >= min(5.0, self.settings.lease_seconds / 2):
            self._last_requeue = now
            self.summary.requeued += await self.requeue_expired()
        if now - self._last_purge >= self.settings.purge_interval_seconds:
            self._last_purge = now
            async with self._write() as conn:
                self.summary.purged += await purge(conn, settings=self.settings)

    async def requeue_expired(self) -> int:
        """Return letters whose lease ran out (their worker died) to the queue."""
        now = utcnow()
        async with self._write() as conn:
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

    async def cycle(self) -> CycleState:
        """Claim, send and record one batch."""
        claimed, slots, state = await self._claim()
        if not claimed:
            return state
        renew = asyncio.create_task(self._renew_leases())
        try:
            results = await self._send(claimed, slots)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        await self._record(results, list(slots))
        return CycleState.worked

    # -- claim --------------------------------------------------------------------------------

    async def _claim(self) -> tuple[list[Claimed], dict[str, int], CycleState]:
        s = self.settings
        claimed: list[Claimed] = []
        slots: dict[str, int] = {}
        async with self._write() as conn:
            pauses = await pacing.active_pauses(conn)
            if self.relay.name in pauses.relays:
                return [], {}, CycleState.paused
            now = utcnow()
            due_filter = [
                LETTER.c.status.in_(CLAIMABLE),
                LETTER.c.next_attempt_at <= now,
                LETTER.c.message.is_not(None),
            ]
            if pauses.campaigns:
                due_filter.append(LETTER.c.campaign_id.not_in(pauses.campaigns))
            due_rows = await conn.execute(
                select(LETTER.c.recipient_domain, func.count())
                .where(*due_filter)
                .group_by(LETTER.c.recipient_domain)
            )
            due = {d: int(n) for d, n in due_rows.all() if d not in pauses.domains}
            if not due:
                return [], {}, CycleState.idle
            global_left = await self.budget.take(
                conn,
                pacing.GLOBAL,
                s.worker_batch_size,
                rate=s.send_rate,
                burst=_burst(s.send_rate),
            )
            granted_global = global_left
            for domain in sorted(due):
                if global_left <= 0:
                    break
                key = pacing.domain_key(domain)
                want = min(due[domain], global_left)
                tokens = await self.budget.take(
                    conn, key, want, rate=s.domain_rate, burst=_burst(s.domain_rate)
                )
                if tokens == 0:
                    continue
                held = await self.budget.acquire_slots(
                    conn,
                    key,
                    s.domain_concurrency,
                    limit=s.domain_concurrency,
                    holder=self.name,
                    ttl=s.lease_seconds,
                )
                rows = (
                    await self._claim_domain(conn, domain, tokens, due_filter, now) if held else []
                )
                await self.budget.refund(conn, key, tokens - len(rows), burst=_burst(s.domain_rate))
                if rows:
                    slots[domain] = held
                    claimed += rows
                    global_left -= len(rows)
                elif held:
                    await self.budget.release_slots(conn, [key], holder=self.name)
            await self.budget.refund(
                conn, pacing.GLOBAL, granted_global - len(claimed), burst=_burst(s.send_rate)
            )
        return claimed, slots, CycleState.worked if claimed else CycleState.throttled

    async def _claim_domain(
        self,
        conn: AsyncConnection,
        domain: str,
        limit: int,
        due_filter: list[Any],
        now: dt.datetime,
    ) -> list[Claimed]:
        picked = (
            select(LETTER.c.id)
            .where(LETTER.c.recipient_domain == domain, *due_filter)
            .order_by(LETTER.c.next_attempt_at, LETTER.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await conn.execute(
            update(LETTER)
            .where(LETTER.c.id.in_(picked.scalar_subquery()))
            .values(
                status=LetterStatus.sending,
                lease_owner=self.name,
                lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_seconds),
                attempts=LETTER.c.attempts + 1,
                first_attempt_at=func.coalesce(LETTER.c.first_attempt_at, now),
                updated_at=now,
            )
            .returning(
                LETTER.c.id,
                LETTER.c.recipient_email,
                LETTER.c.message,
                LETTER.c.attempts,
                LETTER.c.first_attempt_at,
            )
        )
        rows = sorted(result.all(), key=lambda r: r.id)
        return [
            Claimed(r.id, r.recipient_email, domain, r.message, r.attempts, r.first_attempt_at)
            for r in rows
        ]

    async def _renew_leases(self) -> None:
        period = max(0.5, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(period)
            until = utcnow() + dt.timedelta(seconds=self.settings.lease_seconds)
            async with self._write() as conn:
                await conn.execute(
                    update(LETTER)
                    .where(
                        LETTER.c.lease_owner == self.name,
                        LETTER.c.status == LetterStatus.sending,
                    )
                    .values(lease_expires_at=until)
                )

    # -- send ---------------------------------------------------------------------------------

    async def _send(self, claimed: list[Claimed], slots: dict[str, int]) -> list[Result]:
        queue = deque(claimed)
        semaphores = {domain: asyncio.Semaphore(n) for domain, n in slots.items()}
        halted: set[str] = set()
        relay_halted = False
        results: list[Result] = []
        mail_from = self.settings.mail_from

        async def lane(connection: Connection) -> None:
            nonlocal relay_halted
            while queue:
                letter = queue.popleft()
                if relay_halted or letter.domain in halted or self.stopping.is_set():
                    results.append(Result(letter, None))
                    continue
                async with semaphores[letter.domain]:
                    attempt = await connection.send(
                        mail_from=mail_from, rcpt=letter.recipient, message=letter.message
                    )
                results.append(Result(letter, attempt))
                if attempt.relay_error:
                    if self.breaker.failure(PauseKind.relay, self.relay.name):
                        relay_halted = True
                    continue
                self.breaker.success(PauseKind.relay, self.relay.name)
                if attempt.outcome is Outcome.deferred:
                    if self.breaker.failure(PauseKind.domain, letter.domain):
                        halted.add(letter.domain)
                else:
                    self.breaker.success(PauseKind.domain, letter.domain)

        lanes = self.connections[: min(len(self.connections), len(claimed))]
        await asyncio.gather(*(lane(c) for c in lanes))
        self._halted_domains, self._relay_halted = halted, relay_halted
        return results

    # -- record -------------------------------------------------------------------------------

    def _next_attempt(self, letter: Claimed, now: dt.datetime) -> dt.datetime | None:
        """When to try again, or None when the give-up age is reached."""
        s = self.settings
        deadline = letter.first_attempt_at + dt.timedelta(seconds=s.give_up_seconds)
        if now >= deadline:
            return None
        delay = min(s.retry_max_seconds, s.retry_base_seconds * 2 ** max(0, letter.attempts - 1))
        delay *= random.uniform(0.8, 1.2)
        return min(now + dt.timedelta(seconds=delay), deadline)

    def _row(self, result: Result, now: dt.datetime) -> dict[str, Any]:
        row: dict[str, Any] = {
            "_id": result.letter.id,
            "_status": LetterStatus.sending,
            "_next": now,
            "_undo": 0,
            "_sent_at": None,
            "_finished_at": None,
            "_reply": None,
            "_error": None,
            "_class": None,
        }
        attempt = result.attempt
        summary = self.summary
        if attempt is None:
            row.update(_status=LetterStatus.queued, _undo=1)
            summary.released += 1
        elif attempt.outcome is Outcome.sent:
            row.update(_status=LetterStatus.sent, _sent_at=now, _finished_at=now)
            row["_reply"] = attempt.reply
            summary.sent += 1
        elif attempt.outcome is Outcome.failed:
            row.update(_status=LetterStatus.failed, _finished_at=now, _reply=attempt.reply)
            row.update(_error=attempt.reply, _class=attempt.failure)
            summary.failed += 1
        else:
            next_at = self._next_attempt(result.letter, now)
            row.update(_error=attempt.reply, _class=attempt.failure)
            if next_at is None:
                row.update(_status=LetterStatus.failed, _finished_at=now, _reply=attempt.reply)
                row["_class"] = FailureClass.expired
                summary.failed += 1
            else:
                row.update(_status=LetterStatus.deferred, _next=next_at)
                summary.deferred += 1
        if attempt is not None and attempt.failure is not None:
            key = str(row["_class"])
            summary.by_class[key] = summary.by_class.get(key, 0) + 1
        return row

    async def _record(self, results: list[Result], domains: list[str]) -> None:
        now = utcnow()
        rows = [self._row(result, now) for result in results]
        statement = (
            update(LETTER)
            .where(
                LETTER.c.id == bindparam("_id"),
                LETTER.c.lease_owner == self.name,
                LETTER.c.status == LetterStatus.sending,
            )
            .values(
                status=bindparam("_status"),
                attempts=LETTER.c.attempts - bindparam("_undo"),
                next_attempt_at=bindparam("_next"),
                sent_at=bindparam("_sent_at"),
                finished_at=bindparam("_finished_at"),
                final_reply=bindparam("_reply"),
                last_error=bindparam("_error"),
                failure_class=bindparam("_class"),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        async with self._write() as conn:
            if rows:
                await conn.execute(statement, rows)
            await self.budget.release_slots(
                conn, [pacing.domain_key(d) for d in domains], holder=self.name
            )
            until = self.breaker.until()
            for domain in sorted(self._halted_domains):
                reason = "breaker: consecutive errors"
                await pacing.set_pause(
                    conn, kind=PauseKind.domain, key=domain, until=until, reason=reason
                )
                logger.warning("breaker paused domain %s until %s", domain, until.isoformat())
            if self._relay_halted:
                await pacing.set_pause(
                    conn,
                    kind=PauseKind.relay,
                    key=self.relay.name,
                    until=until,
                    reason="breaker: relay unreachable",
                )
                logger.warning("breaker paused relay until %s", until.isoformat())


def _burst(rate: float) -> float:
    """A bucket holds one second's worth of tokens (at least one)."""
    return max(1.0, rate)
