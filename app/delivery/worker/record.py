"""The record step: outcomes learnt from the relay are kept in memory until they are written,
and writing them is retried (with the outage's back-off) until the database takes them.

Outcomes are written as they come, not per batch: as soon as FLUSH_PER_CONNECTION per connection
of the pool are waiting, or the oldest has waited FLUSH_SECONDS; while one write is under way the
next ones gather. No lane sends a further letter while UNRECORDED_PER_CONNECTION per connection
wait, so a worker that dies (SIGKILL) leaves at most that many letters delivered but not
recorded, plus one per connection on the wire (48 with the default pool of 4): those are sent
again once their lease runs out (the duplicate window in the README). Each write is one
transaction: the outcomes in one statement (outcomes.py), the letters withdrawn or cancelled
while on the wire held or cancelled instead of retried, and the breaker's pauses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import greenlet_spawn

from app.db import bind_processor, utcnow
from app.delivery import pacing
from app.delivery.models import PauseKind
from app.delivery.worker.batches import RELAY, Result
from app.delivery.worker.context import WorkerContext
from app.delivery.worker.outcomes import (
    NOT_FINAL,
    OUTCOME_COLUMNS,
    outcome_parameters,
    outcome_row,
    outcomes_statement,
    stop_withdrawn,
)
from app.sqlite_driver import OneTripDBAPI, run_statements

logger = logging.getLogger("appeals.delivery")

# A worker told to stop while the database is away keeps trying to record for this long at most
# (then the letters come back when their lease runs out, and may be sent again).
STOP_GRACE_SECONDS = 30.0
FLUSH_PER_CONNECTION = 5
FLUSH_SECONDS = 0.1
UNRECORDED_PER_CONNECTION = 11
SQLITE_STATEMENT = outcomes_statement(sqlite=True)
POSTGRESQL_STATEMENT = outcomes_statement(sqlite=False)


class Recorder:
    def __init__(
        self,
        ctx: WorkerContext,
        *,
        breaker: pacing.Breaker,
        stopping: asyncio.Event,
        connections: int,
        once: bool = False,
    ) -> None:
        self.ctx = ctx
        self.flush_letters = FLUSH_PER_CONNECTION * connections
        self.max_unrecorded = UNRECORDED_PER_CONNECTION * connections
        self.breaker = breaker
        self.stopping = stopping
        self.once = once  # --once: a failure is raised, not retried
        self.pending: list[Result] = []  # outcomes known, not yet written
        self.opened: set[str] = set()  # breakers opened (domains, or RELAY), pause not written
        self.error: BaseException | None = None  # --once: the failure that stopped the writes
        self._lock = asyncio.Lock()  # one write at a time
        self._added = asyncio.Event()  # something waits to be written
        self._full = asyncio.Event()  # enough waits to write it now
        self._written = asyncio.Event()  # a write committed

    @property
    def unrecorded(self) -> int:
        return len(self.pending)

    def add(self, result: Result) -> None:
        self.pending.append(result)
        self._added.set()
        if len(self.pending) >= self.flush_letters:
            self._full.set()

    def breaker_opened(self, key: str) -> None:
        self.opened.add(key)
        self._full.set()

    async def room(self) -> None:
        """Wait while `max_unrecorded` outcomes wait to be written (the database is slow or
        away)."""
        while len(self.pending) >= self.max_unrecorded:
            if self.error is not None:
                raise self.error
            self._full.set()
            self._written.clear()
            await self._written.wait()

    async def run(self) -> None:
        """Write outcomes as they come, until cancelled."""
        while True:
            if not self.pending and not self.opened:
                self._added.clear()
                await self._added.wait()
            gathering = time.monotonic() + FLUSH_SECONDS
            while len(self.pending) < self.flush_letters and not self.opened:
                left = gathering - time.monotonic()
                if left <= 0:
                    break
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=left)
            try:
                await self.flush()
            except Exception as exc:  # --once only: flush retries otherwise
                self.error = exc
                self._written.set()
                return

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
        self._written.set()  # lanes waiting for room: none will come

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
        if opened or any(row["_status"] in NOT_FINAL for row in rows):
            async with ctx.write() as conn:
                await self._stop_withdrawn(conn, results, rows, now)
                await self._execute(conn, rows, now)
                await self._pause(conn, opened)
        elif rows:
            await self._write_final(rows, now)
        del self.pending[:n]
        self.opened -= opened
        self._written.set()
        for (result, counted_as), row in zip(counted, rows, strict=True):
            ctx.held.pop(result.letter.id, None)
            self._count(result, counted_as, row["_class"])

    async def _execute(self, conn: AsyncConnection, rows: list[dict[str, Any]], now: Any) -> None:
        if not rows:
            return
        sqlite = self.ctx.is_sqlite
        statement = SQLITE_STATEMENT if sqlite else POSTGRESQL_STATEMENT
        parameters = outcome_parameters(rows, owner=self.ctx.name, sqlite=sqlite, now=now)
        await conn.execute(statement, parameters)

    async def _write_final(self, rows: list[dict[str, Any]], now: Any) -> None:
        """Outcomes that are all final (sent, failed), nothing else: the common case, written
        the shortest way. PostgreSQL: the one UPDATE in autocommit, one round trip. SQLite
        (app.sqlite_driver): from BEGIN IMMEDIATE to COMMIT in one trip to the connection's
        thread, no SQLAlchemy around it; a write every few dozen letters made the usual
        connection, transaction and executemany a tenth of the worker's time."""
        engine = self.ctx.engine
        if not isinstance(engine.dialect.loaded_dbapi, OneTripDBAPI):
            async with engine.connect() as conn:
                if not self.ctx.is_sqlite:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await self._execute(conn, rows, now)
                    return
                async with conn.begin():
                    await self._execute(conn, rows, now)
            return
        sql, binds = _sqlite_sql(engine.dialect)
        statements = []
        for row in outcome_parameters(rows, owner=self.ctx.name, sqlite=True, now=now):
            values = []
            for name, constant, process in binds:
                value = row[name] if constant is _FROM_ROW else constant
                values.append(value if process is None else process(value))
            statements.append((sql, values))
        pooled = await engine.raw_connection()
        try:
            await run_statements(pooled.dbapi_connection, statements, begin="BEGIN IMMEDIATE")
        finally:
            # Back to the pool; after an error its rollback is a trip to the thread, in a greenlet.
            await greenlet_spawn(pooled.close)

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


_FROM_ROW = object()  # a parameter taken from each row (others are the statement's constants)


@lru_cache(maxsize=4)
def _sqlite_sql(
    dialect: Dialect,
) -> tuple[str, tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]]:
    """SQLITE_STATEMENT as SQL for the driver, and for each of its parameters in order: its
    name, its constant value (or _FROM_ROW), and its type's conversion."""
    compiled = SQLITE_STATEMENT.compile(dialect=dialect)
    binds = []
    for name in compiled.positiontup or []:
        bind = compiled.binds[name]
        from_row = name in OUTCOME_COLUMNS or name in ("_owner", "_now")
        constant = _FROM_ROW if from_row else bind.effective_value
        binds.append((name, constant, bind_processor(bind.type, dialect)))
    return str(compiled), tuple(binds)
