"""The send worker: claim due letters under a lease, send them over the relay pool, record.

One cycle: (1) in one transaction (BEGIN IMMEDIATE on SQLite; on PostgreSQL row locks with
FOR UPDATE SKIP LOCKED, so any number of workers share the queue), take tokens from the shared
buckets and claim that many due letters per domain, moving them to `sending` with this worker's
lease; (2) send them over up to `smtp_pool_size` persistent connections, at most the granted
slots per domain at once; (3) record every outcome (one executemany on SQLite, one UPDATE over
unnest() on PostgreSQL). The steps overlap: while a batch is on the wire, the previous one is
recorded and the next one claimed (at the same time on PostgreSQL, one after the other on
SQLite). A worker that dies leaves `sending` letters whose lease runs out; any worker returns
them to the queue.
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
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    column,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeEngine

from app.config import Settings
from app.db import engine_for, utcnow
from app.delivery import pacing
from app.delivery.models import PauseKind
from app.delivery.purge import purge
from app.delivery.smtp import Attempt, Connection, Outcome, Relay
from app.letters.models import (
    ALLOWED,
    CLAIMABLE,
    FINAL,
    FailureClass,
    Letter,
    LetterMessage,
    LetterStatus,
    sources,
)

logger = logging.getLogger("appeals.delivery")
LETTER: Table = Letter.__table__  # type: ignore[assignment]
MESSAGE: Table = LetterMessage.__table__  # type: ignore[assignment]

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
    appeal_version_id: int


@dataclass(slots=True)
class Result:
    letter: Claimed
    attempt: Attempt | None  # None: released unsent (breaker opened, worker stopping)


T = TypeVar("T")
RELAY = "<relay>"  # the breaker's key for the relay itself (never a domain name)


class CycleState(StrEnum):
    worked = "worked"  # letters were claimed and processed
    throttled = "throttled"  # due letters wait for tokens or slots
    paused = "paused"  # the relay is paused
    idle = "idle"  # nothing due


@dataclass(slots=True)
class Batch:
    claimed: list[Claimed]
    slots: dict[str, int]  # concurrency slots held per domain
    state: CycleState

    @classmethod
    def empty(cls, state: CycleState = CycleState.idle) -> Batch:
        return cls([], {}, state)


@dataclass(slots=True)
class Sent:
    results: list[Result]
    domains: set[str]
    opened: set[str]  # breakers opened during the batch: domains, or RELAY


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
        self.engine = engine or engine_for(settings)
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
        self._halted_until: dict[str, float] = {}
        self._due_cache: dict[str, int] = {}
        self._due_at = 0.0

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
        """Work until stopped (or, with once, until nothing is due); returns the totals.

        Pipelined: while one batch is on the wire, the previous one is recorded and the next
        one claimed, so that the connections never wait for the database. The caller closes
        the worker (`close()`) when done with it.
        """
        renew = asyncio.create_task(self._renew_leases())
        try:
            await self._loop(once=once)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        return self.summary

    async def _loop(self, *, once: bool) -> None:
        sent: Sent | None = None  # on the wire before, not yet recorded
        batch: Batch | None = None  # claimed, not yet sent
        while True:
            if batch is None or not batch.claimed:
                if sent is not None:
                    await self._guard(self._record(sent, release=sent.domains), once=once)
                    sent = None
                if self.stopping.is_set():
                    return
                if batch is not None:  # the last claim found nothing to send now
                    if once and batch.state in (CycleState.idle, CycleState.paused):
                        return
                    await self._sleep(batch.state)
                    if self.stopping.is_set():
                        return
                await self._guard(self._housekeeping(), once=once)
                batch = await self._guard(self._claim(), once=once) or Batch.empty()
                continue
            between = asyncio.create_task(self._between(sent, keep=set(batch.slots), once=once))
            try:
                sent = await self._send(batch.claimed, batch.slots)
            finally:
                batch = await between

    async def _between(self, sent: Sent | None, *, keep: set[str], once: bool) -> Batch:
        """Record the previous batch and claim the next one (unless stopping).

        On PostgreSQL the two run at once, on two connections: they touch different letters,
        and the database gets a core of its own while this process sends. SQLite has one
        writer: there the record comes first. `keep`: domains of the batch on the wire.
        """
        if sent is None or self.is_sqlite:
            if sent is not None:
                await self._guard(self._record(sent, release=sent.domains - keep), once=once)
            return await self._next(keep, once=once)
        recorded, claimed = await asyncio.gather(
            self._guard(self._record(sent, release=set()), once=once),
            self._next(keep, once=once),
            return_exceptions=True,
        )
        for outcome in (recorded, claimed):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(claimed, Batch)
        # The recorded batch's slots, unless the batch on the wire or the new one uses them (the
        # record could not give them back itself: the claim may have just taken them again).
        release = sent.domains - keep - set(claimed.slots)
        if release:
            await self._guard(self._release(release), once=once)
        return claimed

    async def _next(self, keep: set[str], *, once: bool) -> Batch:
        if self.stopping.is_set():
            return Batch.empty()
        await self._guard(self._housekeeping(), once=once)  # a busy worker still requeues, purges
        claim = self._claim(in_flight=frozenset(keep))
        return await self._guard(claim, once=once) or Batch.empty(CycleState.throttled)

    async def _release(self, domains: set[str]) -> None:
        """Give back the concurrency slots this worker holds on these domains."""
        async with self._write() as conn:
            keys = [pacing.domain_key(d) for d in sorted(domains)]
            await self.budget.release_slots(conn, keys, holder=self.name)

    async def _guard(self, step: Awaitable[T], *, once: bool) -> T | None:
        """Run a database step; outside --once, survive its failure (the database may be down)."""
        try:
            return await step
        except Exception as exc:
            if once:
                raise
            # Log the type only: messages can carry SQL parameters, that is personal data. The
            # leases bring back whatever was claimed and not recorded.
            logger.error("worker step failed: %s; retrying", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), timeout=self.settings.worker_poll_seconds
                )
            return None

    async def _sleep(self, state: CycleState) -> None:
        """Wait before the next claim; when idle, QUIT connections nobody has used for a while
        (only called with no batch on the wire)."""
        s = self.settings
        delay = s.worker_poll_seconds
        if state is CycleState.throttled:
            # Waiting for tokens: about one token's time, so a slow domain is not polled hot.
            delay = min(delay, max(0.05, 1 / max(min(s.domain_rate, s.send_rate), 1e-3)))
        else:
            await asyncio.gather(*(c.close_if_idle() for c in self.connections))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)

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
        """Return letters whose lease ran out (their worker died) to the queue; those their
        citizens cancelled meanwhile are cancelled instead."""
        now = utcnow()
        async with self._write() as conn:
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

    # -- claim --------------------------------------------------------------------------------

    async def _claim(self, *, in_flight: frozenset[str] = frozenset()) -> Batch:
        """Claim due letters, domain by domain, as far as tokens and slots allow. `in_flight`:
        domains of the batch now on the wire, whose slots must be kept."""
        s = self.settings
        claimed: list[Claimed] = []
        slots: dict[str, int] = {}
        async with self._write() as conn:
            pauses = await pacing.active_pauses(conn)
            if self.relay.name in pauses.relays or self._halted(RELAY):
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
                if d not in pauses.domains and not self._halted(d)
            }
            if not due:
                return Batch.empty()
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
                    # Never hoard slots this worker's pool cannot use: other workers need them.
                    min(s.domain_concurrency, len(self.connections)),
                    limit=s.domain_concurrency,
                    holder=self.name,
                    ttl=s.lease_seconds,
                )
                rows = (
                    await self._claim_domain(conn, domain, tokens, due_filter, now) if held else []
                )
                await self.budget.refund(conn, key, tokens - len(rows), burst=_burst(s.domain_rate))
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
                    await self.budget.release_slots(conn, [key], holder=self.name)
            await self.budget.refund(
                conn, pacing.GLOBAL, granted_global - len(claimed), burst=_burst(s.send_rate)
            )
        claimed = await self._with_messages(claimed)
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
                lease_owner=self.name,
                lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_seconds),
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
            )
        )
        rows = sorted(result.all(), key=lambda r: r.id)
        # The message bytes are read after the claim commits (see _with_messages).
        return [
            Claimed(
                r.id,
                r.recipient_email,
                domain,
                b"",
                r.attempts,
                r.first_attempt_at,
                r.appeal_version_id,
            )
            for r in rows
        ]

    async def _with_messages(self, claimed: list[Claimed]) -> list[Claimed]:
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
            if self.is_sqlite
            else MESSAGE.c.letter_id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
        )
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(MESSAGE.c.letter_id, MESSAGE.c.message).where(match))
            bodies = dict(rows.all())
        for letter in claimed:
            letter.message = bodies[letter.id]
        return claimed

    async def _renew_leases(self) -> None:
        """Extend the lease of every letter this worker holds, a few times per lease."""
        period = max(0.5, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(period)
            until = utcnow() + dt.timedelta(seconds=self.settings.lease_seconds)
            with contextlib.suppress(Exception):
                await self._renew(until)

    async def _renew(self, until: dt.datetime) -> None:
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

    def _halted(self, key: str) -> bool:
        """Whether the breaker, in this worker, holds `key` (a domain, or RELAY) paused now."""
        until = self._halted_until.get(key)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._halted_until[key]
        return False

    def _open_breaker(self, key: str, sent: Sent) -> None:
        self._halted_until[key] = time.monotonic() + self.settings.breaker_pause_seconds
        sent.opened.add(key)

    async def _send(self, claimed: list[Claimed], slots: dict[str, int]) -> Sent:
        queue = deque(claimed)
        semaphores = {domain: asyncio.Semaphore(n) for domain, n in slots.items()}
        sent = Sent(results=[], domains=set(slots), opened=set())
        mail_from = self.settings.mail_from
        relay = self.relay.name

        async def lane(connection: Connection) -> None:
            while queue:
                letter = queue.popleft()
                if self.stopping.is_set() or self._halted(RELAY) or self._halted(letter.domain):
                    sent.results.append(Result(letter, None))
                    continue
                async with semaphores[letter.domain]:
                    attempt = await connection.send(
                        mail_from=mail_from, rcpt=letter.recipient, message=letter.message
                    )
                sent.results.append(Result(letter, attempt))
                if attempt.relay_error:
                    if self.breaker.failure(PauseKind.relay, relay):
                        self._open_breaker(RELAY, sent)
                    continue
                self.breaker.success(PauseKind.relay, relay)
                if attempt.outcome is Outcome.deferred:
                    if self.breaker.failure(PauseKind.domain, letter.domain):
                        self._open_breaker(letter.domain, sent)
                else:
                    self.breaker.success(PauseKind.domain, letter.domain)

        lanes = self.connections[: min(len(self.connections), len(claimed))]
        await asyncio.gather(*(lane(c) for c in lanes))
        return sent

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

    @staticmethod
    def _stop_withdrawn(
        rows: list[dict[str, Any]],
        claimed: dict[int, Claimed],
        stopped: dict[int, PauseKind],
        now: dt.datetime,
    ) -> None:
        """Letters of a version withdrawn (or cancelled) while on the wire, and not delivered:
        held (or cancelled) instead of going back to the queue."""
        for row in rows:
            kind = stopped.get(claimed[row["_id"]].appeal_version_id)
            if kind is None or row["_status"] not in (LetterStatus.deferred, LetterStatus.queued):
                continue
            if kind is PauseKind.version_cancel:
                row.update(_status=LetterStatus.cancelled, _finished_at=now)
            else:
                row["_status"] = LetterStatus.held

    def _outcomes(self, rows: list[dict[str, Any]], now: dt.datetime) -> tuple[Any, Any]:
        """The UPDATE that writes the outcomes, and its parameters.

        SQLite: one row per execution (its triggers are row triggers anyway). PostgreSQL: one
        statement over unnest() of one array per column, so that the statistics' statement
        trigger fires once per batch instead of once per letter.
        """
        if self.is_sqlite:
            o: Any = {name: bindparam(name) for name in OUTCOME_COLUMNS}
            parameters: Any = rows
        else:
            o = _UNNEST.c
            parameters = {name: [row[name] for row in rows] for name in OUTCOME_COLUMNS}
        statement = (
            update(LETTER)
            .where(
                LETTER.c.id == o["_id"],
                LETTER.c.lease_owner == self.name,
                LETTER.c.status == LetterStatus.sending,
            )
            .values(
                status=o["_status"],
                attempts=LETTER.c.attempts - o["_undo"],
                next_attempt_at=o["_next"],
                sent_at=o["_sent_at"],
                finished_at=o["_finished_at"],
                final_reply=o["_reply"],
                last_error=o["_error"],
                failure_class=o["_class"],
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        return statement, parameters

    async def _record(self, sent: Sent, *, release: set[str]) -> None:
        """Write every outcome of a batch; give back the slots of the `release` domains."""
        now = utcnow()
        rows = [self._row(result, now) for result in sent.results]
        async with self._write() as conn:
            versions = {r.letter.appeal_version_id for r in sent.results}
            stopped = await pacing.stopped_versions(conn, versions)
            if stopped:
                claimed = {r.letter.id: r.letter for r in sent.results}
                self._stop_withdrawn(rows, claimed, stopped, now)
            cancelled = await pacing.cancelled_letters(conn, [r.letter.id for r in sent.results])
            if cancelled:
                for row in rows:
                    if row["_id"] in cancelled and row["_status"] in (
                        LetterStatus.deferred,
                        LetterStatus.queued,
                        LetterStatus.held,
                    ):
                        row.update(_status=LetterStatus.cancelled, _finished_at=now)
                await pacing.forget_letters(conn, cancelled)
            if rows:
                await conn.execute(*self._outcomes(rows, now))
            await self.budget.release_slots(
                conn, [pacing.domain_key(d) for d in sorted(release)], holder=self.name
            )
            until = self.breaker.until()
            for domain in sorted(sent.opened - {RELAY}):
                reason = "breaker: consecutive errors"
                await pacing.set_pause(
                    conn, kind=PauseKind.domain, key=domain, until=until, reason=reason
                )
                logger.warning("breaker paused domain %s until %s", domain, until.isoformat())
            if RELAY in sent.opened:
                await pacing.set_pause(
                    conn,
                    kind=PauseKind.relay,
                    key=self.relay.name,
                    until=until,
                    reason="breaker: relay unreachable",
                )
                logger.warning("breaker paused relay until %s", until.isoformat())


DUE_REFRESH_SECONDS = 1.0

# The outcome of one letter, as the record step writes it (see Worker._row).
OUTCOME_COLUMNS: dict[str, TypeEngine[Any]] = {
    "_id": Integer(),
    "_status": String(),
    "_undo": Integer(),
    "_next": DateTime(timezone=True),
    "_sent_at": DateTime(timezone=True),
    "_finished_at": DateTime(timezone=True),
    "_reply": Text(),
    "_error": Text(),
    "_class": String(),
}
_UNNEST_COLUMNS = [column(name, type_) for name, type_ in OUTCOME_COLUMNS.items()]
_UNNEST = (
    func.unnest(*(bindparam(c.name, type_=ARRAY(c.type)) for c in _UNNEST_COLUMNS))
    .table_valued(*_UNNEST_COLUMNS)
    .render_derived(name="outcome")
)


def _burst(rate: float) -> float:
    """A bucket holds one second's worth of tokens (at least one)."""
    return max(1.0, rate)
