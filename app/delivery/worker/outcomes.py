"""What the record step writes for one letter: its new status, the next attempt of a deferred
letter (exponential back-off with jitter; after an unknown outcome the longest back-off, and
only once: a second unknown outcome in a row fails the letter), and the statement that writes
a set of them at once."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    column,
    func,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

from app.config import Settings
from app.delivery.models import PauseKind
from app.delivery.smtp import Outcome
from app.delivery.worker.batches import Claimed, Result
from app.letters.models import ALLOWED, FailureClass, Letter, LetterStatus

LETTER: Table = Letter.__table__  # type: ignore[assignment]

# What the record step writes must be allowed from `sending` by the state machine.
assert {
    LetterStatus.sent,
    LetterStatus.deferred,
    LetterStatus.failed,
    LetterStatus.queued,
    LetterStatus.held,
    LetterStatus.cancelled,
} <= ALLOWED[LetterStatus.sending]

# The outcome of one letter, as the record step writes it (see outcome_row).
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
# Statuses after which the letter may still go out (the withdrawals and cancellations that
# came while it was on the wire apply to them).
NOT_FINAL = (LetterStatus.deferred, LetterStatus.queued, LetterStatus.held)


UNKNOWN_TWICE = "outcome unknown twice in a row: not sent again (the relay may have it)"


def next_attempt(
    settings: Settings, letter: Claimed, now: dt.datetime, *, unknown: bool = False
) -> dt.datetime | None:
    """When to try again, or None when the give-up age is reached.

    After an unknown outcome (the connection was lost after the final dot: the relay may have
    the letter) the longest back-off, `retry_max_seconds`, whatever the attempt: a fault that
    repeats must not deliver the same letter again and again in a short time."""
    s = settings
    deadline = letter.first_attempt_at + dt.timedelta(seconds=s.give_up_seconds)
    if now >= deadline:
        return None
    delay = min(s.retry_max_seconds, s.retry_base_seconds * 2 ** max(0, letter.attempts - 1))
    if unknown:
        delay = s.retry_max_seconds
    delay *= random.uniform(0.8, 1.2)
    return min(now + dt.timedelta(seconds=delay), deadline)


def outcome_row(settings: Settings, result: Result, now: dt.datetime) -> tuple[dict[str, Any], str]:
    """The row the record step writes for a result, and what the summary counts it as."""
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
    if attempt is None:
        row.update(_status=LetterStatus.queued, _undo=1)
        return row, "released"
    if attempt.outcome is Outcome.sent:
        row.update(_status=LetterStatus.sent, _sent_at=now, _finished_at=now)
        row["_reply"] = attempt.reply
        return row, "sent"
    row.update(_error=attempt.reply, _class=attempt.failure)
    if attempt.outcome is Outcome.failed:
        row.update(_status=LetterStatus.failed, _finished_at=now, _reply=attempt.reply)
        return row, "failed"
    unknown = attempt.failure is FailureClass.unknown
    if unknown and result.letter.unknown_before:
        # The second unknown outcome in a row: the relay may well hold it twice already.
        row.update(_status=LetterStatus.failed, _finished_at=now, _reply=attempt.reply)
        row["_error"] = f"{attempt.reply}; {UNKNOWN_TWICE}"
        return row, "failed"
    next_at = next_attempt(settings, result.letter, now, unknown=unknown)
    if next_at is None:
        row.update(_status=LetterStatus.failed, _finished_at=now, _reply=attempt.reply)
        row["_class"] = FailureClass.expired
        return row, "failed"
    row.update(_status=LetterStatus.deferred, _next=next_at)
    return row, "deferred"


def stop_withdrawn(
    rows: list[dict[str, Any]],
    claimed: dict[int, Claimed],
    stopped: dict[int, PauseKind],
    cancelled: set[int],
    now: dt.datetime,
) -> None:
    """Letters of a version withdrawn (or cancelled), and letters their citizens cancelled, while
    on the wire, and not delivered: held (or cancelled) instead of going back to the queue."""
    for row in rows:
        if row["_status"] not in NOT_FINAL:
            continue
        kind = stopped.get(claimed[row["_id"]].appeal_version_id)
        if kind is PauseKind.version_cancel or row["_id"] in cancelled:
            row.update(_status=LetterStatus.cancelled, _finished_at=now)
        elif kind is PauseKind.version_hold:
            row["_status"] = LetterStatus.held


def outcomes_statement(*, sqlite: bool) -> Any:
    """The UPDATE that writes outcomes of letters leased to `_owner` at `_now`.

    SQLite: one row per execution (its triggers are row triggers anyway), each row's parameters
    with `_owner` and `_now` (see outcome_parameters). PostgreSQL: one statement over unnest()
    of one array per column, so that the statistics' statement trigger fires once per write
    instead of once per letter.
    """
    o: Any = {name: bindparam(name) for name in OUTCOME_COLUMNS} if sqlite else _UNNEST.c
    released = o["_undo"] == 1
    return (
        update(LETTER)
        .where(
            LETTER.c.id == o["_id"],
            LETTER.c.lease_owner == bindparam("_owner", type_=String()),
            LETTER.c.status == LetterStatus.sending,
        )
        .values(
            status=o["_status"],
            attempts=LETTER.c.attempts - o["_undo"],
            next_attempt_at=o["_next"],
            sent_at=o["_sent_at"],
            finished_at=o["_finished_at"],
            final_reply=o["_reply"],
            # A letter released unsent keeps what its last attempt said.
            last_error=case((released, LETTER.c.last_error), else_=o["_error"]),
            failure_class=case((released, LETTER.c.failure_class), else_=o["_class"]),
            lease_owner=None,
            lease_expires_at=None,
            updated_at=bindparam("_now", type_=DateTime(timezone=True)),
        )
    )


def outcome_parameters(
    rows: list[dict[str, Any]], *, owner: str, sqlite: bool, now: dt.datetime
) -> Any:
    """The parameters of outcomes_statement for these rows."""
    if sqlite:
        return [{**row, "_owner": owner, "_now": now} for row in rows]
    arrays: dict[str, Any] = {name: [row[name] for row in rows] for name in OUTCOME_COLUMNS}
    return {**arrays, "_owner": owner, "_now": now}
