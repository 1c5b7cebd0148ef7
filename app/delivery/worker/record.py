"""The record step: outcomes learnt from the relay are kept in memory until they are written,
and writing them is retried (with the outage's back-off) until the database takes them. Each
write is one transaction: the outcomes in one statement (outcomes.py), the letters withdrawn or
cancelled while on the wire held or cancelled instead of retried, and the breaker's pauses."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import utcnow
from app.delivery import pacing
from app.delivery.models import PauseKind
from app.delivery.worker.batches import RELAY, Result
from app.delivery.worker.context import WorkerContext
from app.delivery.worker.outcomes import NOT_FINAL, outcome_row, outcomes_statement, stop_withdrawn

logger = logging.getLogger("appeals.delivery")

# A worker told to stop while the database is away keeps trying to record for this long at most
# (then the letters come back when their lease runs out, and may be sent again).
STOP_GRACE_SECONDS = 30.0


class Recorder:
    def __init__(
        self,
        ctx: WorkerContext,
        *,
        breaker: pacing.Breaker,
        stopping: asyncio.Event,
        once: bool = False,
    ) -> None:
        self.ctx = ctx
        self.breaker = breaker
        self.stopping = stopping
        self.once = once  # --once: a failure is raised, not retried
        self.pending: list[Result] = []  # outcomes known, not yet written
        self.opened: set[str] = set()  # breakers opened (domains, or RELAY), pause not written
        self._lock = asyncio.Lock()  # one write at a time

    @property
    def unrecorded(self) -> int:
        return len(self.pending)

    def add(self, result: Result) -> None:
        self.pending.append(result)

    def breaker_opened(self, key: str) -> None:
        self.opened.add(key)

    async def flush(self) -> None:
        """Write every outcome added so far; retried until the database takes them."""
        async with self._lock:
            stop_since: float | None = None
            while self.pending or self.opened:
                started = self.ctx.outage.clock()
                try:
                    await self._write(len(self.pending), set(self.opened))
                except Exception as exc:
                    if self.once:
                        raise
                    self.ctx.outage.failed(exc, started)
                    if self.stopping.is_set():
                        stop_since = stop_since or time.monotonic()
                        if time.monotonic() - stop_since > STOP_GRACE_SECONDS:
                            self._give_up()
                            return
                    await self.ctx.outage.wait()
                    continue
                self.ctx.outage.succeeded(started)

    def _give_up(self) -> None:
        logger.error(
            "stopping with %d outcomes not recorded (the database is away): their letters "
            "return to the queue when their lease runs out, and may be sent again",
            len(self.pending),
        )
        self.pending.clear()
        self.opened.clear()

    async def _write(self, n: int, opened: set[str]) -> None:
        """Write the first `n` pending outcomes and the `opened` breakers' pauses, in one
        transaction; only once it committed are they taken off the pending list."""
        ctx = self.ctx
        results = self.pending[:n]
        now = utcnow()
        rows: list[dict[str, Any]] = []
        counted: list[tuple[Result, str]] = []
        for result in results:
            row, counted_as = outcome_row(ctx.settings, result, now)
            rows.append(row)
            counted.append((result, counted_as))
        async with ctx.write() as conn:
            if any(row["_status"] in NOT_FINAL for row in rows):
                await self._stop_withdrawn(conn, results, rows, now)
            if rows:
                await conn.execute(
                    *outcomes_statement(rows, owner=ctx.name, sqlite=ctx.is_sqlite, now=now)
                )
            await self._pause(conn, opened)
        del self.pending[:n]
        self.opened -= opened
        for (result, counted_as), row in zip(counted, rows, strict=True):
            ctx.held.pop(result.letter.id, None)
            self._count(result, counted_as, row["_class"])

    async def _stop_withdrawn(
        self,
        conn: AsyncConnection,
        results: list[Result],
        rows: list[dict[str, Any]],
        now: Any,
    ) -> None:
        # Only letters that would go out again need this: a sent or failed letter is final
        # whatever was asked meanwhile (and a cancellation request left for it is dropped by
        # the next claim).
        versions = {r.letter.appeal_version_id for r in results}
        stopped = await pacing.stopped_versions(conn, versions)
        cancelled = await pacing.cancelled_letters(conn, [r.letter.id for r in results])
        if stopped or cancelled:
            stop_withdrawn(rows, {r.letter.id: r.letter for r in results}, stopped, cancelled, now)
        if cancelled:
            await pacing.forget_letters(conn, cancelled)

    async def _pause(self, conn: AsyncConnection, opened: set[str]) -> None:
        if not opened:
            return
        until = self.breaker.until()
        for domain in sorted(opened - {RELAY}):
            reason = "breaker: consecutive errors"
            await pacing.set_pause(
                conn, kind=PauseKind.domain, key=domain, until=until, reason=reason
            )
            logger.warning("breaker paused domain %s until %s", domain, until.isoformat())
        if RELAY in opened:
            await pacing.set_pause(
                conn,
                kind=PauseKind.relay,
                key=self.ctx.relay.name,
                until=until,
                reason="breaker: relay unreachable",
            )
            logger.warning("breaker paused relay until %s", until.isoformat())

    def _count(self, result: Result, counted_as: str, failure_class: str | None) -> None:
        summary = self.ctx.summary
        setattr(summary, counted_as, getattr(summary, counted_as) + 1)
        if result.attempt is not None and result.attempt.failure is not None:
            key = str(failure_class)
            summary.by_class[key] = summary.by_class.get(key, 0) + 1
