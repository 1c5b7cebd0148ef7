"""The letter: one outbox row per (citizen, deputy), carrying the finished message bytes.

The status is an explicit state machine; `move()` is the only way an ORM letter changes status,
and the bulk updates of the worker and the services take their allowed source states from the
same table (`sources()`), so that both paths obey it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.deputies.models import Deputy
from app.errors import Conflict


class LetterStatus(StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    deferred = "deferred"
    failed = "failed"
    cancelled = "cancelled"
    held = "held"


class FailureClass(StrEnum):
    """Why an attempt did not deliver: stored with the error, counted by /metrics."""

    temporary = "temporary"  # a 4xx reply
    permanent = "permanent"  # a 5xx reply
    timeout = "timeout"
    connection = "connection"  # refused, reset, TLS or login failure before the transaction
    unknown = "unknown"  # the connection was lost after the final dot: delivered or not
    expired = "expired"  # still undelivered at the give-up age


S = LetterStatus
ALLOWED: dict[LetterStatus, frozenset[LetterStatus]] = {
    S.queued: frozenset({S.sending, S.cancelled, S.held}),
    # Back to queued when a lease runs out (crashed worker) or a worker releases a letter unsent;
    # held or cancelled when its version was withdrawn or cancelled while it was on the wire and
    # it was not delivered.
    S.sending: frozenset({S.sent, S.deferred, S.failed, S.queued, S.held, S.cancelled}),
    S.deferred: frozenset({S.sending, S.cancelled, S.held}),
    S.held: frozenset({S.queued, S.cancelled}),
    S.sent: frozenset(),
    S.failed: frozenset(),
    S.cancelled: frozenset(),
}
FINAL: frozenset[LetterStatus] = frozenset(s for s, targets in ALLOWED.items() if not targets)
# Statuses a worker may claim when due.
CLAIMABLE: frozenset[LetterStatus] = frozenset({S.queued, S.deferred})


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, current: LetterStatus, to: LetterStatus) -> None:
        super().__init__(f"A {current} letter cannot become {to}.", field="status")
        self.current = current
        self.to = to


def sources(to: LetterStatus) -> frozenset[LetterStatus]:
    """The statuses from which a letter may move to `to` (for bulk UPDATE ... WHERE status IN)."""
    return frozenset(s for s, targets in ALLOWED.items() if to in targets)


def move(letter: Letter, to: LetterStatus) -> None:
    """Change the letter's status if the state machine allows it; InvalidTransition otherwise."""
    current = LetterStatus(letter.status)
    if to not in ALLOWED[current]:
        raise InvalidTransition(current, to)
    now = utcnow()
    letter.status = to
    letter.updated_at = now
    if to in FINAL:
        letter.finished_at = now
        letter.lease_owner = None
        letter.lease_expires_at = None


class Letter(Base):
    __tablename__ = "letter"
    __table_args__ = (
        # The worker's claim: due letters of one domain in order.
        Index("ix_letter_domain_status_next", "recipient_domain", "status", "next_attempt_at"),
        Index("ix_letter_status_next", "status", "next_attempt_at"),
        # The purge: final letters past the retention period.
        Index("ix_letter_finished_purged", "finished_at", "purged_at"),
        # Citizen flow (app.letters.submissions): one letter per e-mail, deputy and campaign.
        # NULL keys (letters made by other paths) never collide. Sender before deputy: the 50
        # letters of a confirmation are one run of the index, not 50 places in it (migration
        # 0012), and the deputies a sender already wrote to in a campaign (flow.already_written),
        # the statistics' distinct senders and every query by campaign alone read its prefix.
        UniqueConstraint("campaign_id", "sender_key", "deputy_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Plain integers until the campaigns package lands; the merge adds the foreign keys.
    campaign_id: Mapped[int] = mapped_column(Integer)
    appeal_version_id: Mapped[int] = mapped_column(Integer, index=True)
    # Not indexed alone: deputies are never deleted, and nothing reads letters by deputy alone.
    deputy_id: Mapped[int] = mapped_column(ForeignKey("deputy.id"))
    recipient_email: Mapped[str] = mapped_column(String(254))
    # Indexed by ix_letter_domain_status_next (its first column).
    recipient_domain: Mapped[str] = mapped_column(String(253))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    # The sender's personal data; erased by the purge.
    sender_name: Mapped[str | None] = mapped_column(String(200))
    sender_email: Mapped[str | None] = mapped_column(String(254))
    # Citizen flow: a keyed hash (HMAC) of the lower-cased sender e-mail. Survives the retention
    # purge, so that the once-per-deputy rule holds after the address itself is erased.
    sender_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[LetterStatus] = mapped_column(String(16), default=LetterStatus.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_class: Mapped[FailureClass | None] = mapped_column(String(16))
    final_reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    deputy: Mapped[Deputy] = relationship(lazy="raise")
    # The message bytes, in their own row: see LetterMessage. None once purged.
    body: Mapped[LetterMessage | None] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class LetterMessage(Base):
    """The complete RFC 5322 message of a letter, built once at creation; deleted by the purge.

    Kept out of the `letter` row on purpose: SQLite rewrites a whole row on every UPDATE, and the
    worker updates a letter's status at least twice; with the ~4 KB message inline each claim of
    500 letters cost 17 ms instead of 2 ms (measured), which made SQLite the bottleneck.
    """

    __tablename__ = "letter_message"

    letter_id: Mapped[int] = mapped_column(
        ForeignKey("letter.id", ondelete="CASCADE"), primary_key=True
    )
    message: Mapped[bytes] = mapped_column(LargeBinary)
