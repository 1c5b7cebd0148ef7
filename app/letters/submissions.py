"""The pending submission: what a citizen sent, held until the e-mail link confirms it.

Kept apart from models.py (the outbox) so that the citizen flow and delivery evolve separately.
Only hashes of the link tokens are stored: a copy of the database opens no letter's status page.
The sender's data is cleared once the letters exist (they carry what they need) or the link
expires (the purge deletes the row).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class SubmissionStatus(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    erased = "erased"


class Submission(Base):
    __tablename__ = "submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(16))
    # The deputies the citizen ticked; after confirmation, the letters made for them.
    deputy_ids: Mapped[list[int]] = mapped_column(JSON)
    letter_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Deputies skipped at confirmation: this address had already written to them.
    skipped_deputy_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[SubmissionStatus] = mapped_column(String(16), default=SubmissionStatus.pending)
    # The sender's data; NULL once the letters are made or the citizen erased it.
    full_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    locality: Mapped[str | None] = mapped_column(String(200))
    postal_address: Mapped[str | None] = mapped_column(String(300))
    reply_to: Mapped[bool] = mapped_column(default=True)
    # The citizen's language (pages and e-mail).
    language: Mapped[str] = mapped_column(String(8))
    # SHA-256 of the confirmation and status tokens (the tokens travel in the e-mail only).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ConfirmationEmail(Base):
    """The outbox of confirmation e-mails: written in the submission's transaction, sent by the
    delivery worker (embedded in the service, or `appeals worker`) and deleted once sent.

    It carries the secret links: the row lives only until it is sent, given up, or its link
    expires, and neither it nor its address is ever logged.
    """

    __tablename__ = "confirmation_email"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The confirmation link's expiry: past it the e-mail is useless and deleted unsent.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # A sender's lease: another sender leaves the row alone until then.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
