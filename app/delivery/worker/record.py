"""The record step: every outcome of a batch written in one statement (one executemany on
SQLite, one UPDATE over unnest() on PostgreSQL), with the next attempt of a deferred letter, the
letters withdrawn or cancelled while on the wire, the slots given back and the breaker's pauses."""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from sqlalchemy import DateTime, Integer, String, Table, Text, bindparam, column, func, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

from app.db import utcnow
from app.delivery import pacing
from app.delivery.models import PauseKind
from app.delivery.smtp import Outcome
from app.delivery.worker.batches import RELAY, Claimed, Result, Sent
from app.delivery.worker.context import WorkerContext
from app.letters.models import ALLOWED, FailureClass, Letter, LetterStatus

logger = logging.getLogger("appeals.delivery")
LETTER: Table = Letter.__table__  # type: ignore[assignment]

# What the record step writes must be allowed from `sending` by the state machine.
assert {LetterStatus.sent, LetterStatus.deferred, LetterStatus.failed, LetterStatus.queued} <= (
    ALLOWED[LetterStatus.sending]
)

# The outcome of one letter, as the record step writes it (see Recorder.row).
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


class Recorder:
    def __init__(self, ctx: WorkerContext, *, breaker: pacing.Breaker) -> None:
        self.ctx = ctx
        self.breaker = breaker

    def next_attempt(self, letter: Claimed, now: dt.datetime) -> dt.datetime | None:
        """When to try again, or None when the give-up age is reached."""
        s = self.ctx.settings
        deadline = letter.first_attempt_at + dt.timedelta(seconds=s.give_up_seconds)
        if now >= deadline:
            return None
        delay = min(s.retry_max_seconds, s.retry_base_seconds * 2 ** max(0, letter.attempts - 1))
        delay *= random.uniform(0.8, 1.2)
        return min(now + dt.timedelta(seconds=delay), deadline)

    def row(self, result: Result, now: dt.datetime) -> dict[str, Any]:
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
        summary = self.ctx.summary
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
            next_at = self.next_attempt(result.letter, now)
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
        if self.ctx.is_sqlite:
            o: Any = {name: bindparam(name) for name in OUTCOME_COLUMNS}
            parameters: Any = rows
        else:
            o = _UNNEST.c
            parameters = {name: [row[name] for row in rows] for name in OUTCOME_COLUMNS}
        statement = (
            update(LETTER)
            .where(
                LETTER.c.id == o["_id"],
                LETTER.c.lease_owner == self.ctx.name,
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

    async def record(self, sent: Sent, *, release: set[str]) -> None:
        """Write every outcome of a batch; give back the slots of the `release` domains."""
        ctx = self.ctx
        now = utcnow()
        rows = [self.row(result, now) for result in sent.results]
        async with ctx.write() as conn:
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
            await ctx.budget.release_slots(
                conn, [pacing.domain_key(d) for d in sorted(release)], holder=ctx.name
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
                    key=ctx.relay.name,
                    until=until,
                    reason="breaker: relay unreachable",
                )
                logger.warning("breaker paused relay until %s", until.isoformat())
