"""Delivery's own tables: pauses, the shared pacing budget, concurrency slots, the local sink."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class PauseKind(StrEnum):
    campaign = "campaign"
    domain = "domain"
    relay = "relay"
    # An appeal version whose approval was withdrawn (letters held) or that was cancelled.
    version_hold = "version_hold"
    version_cancel = "version_cancel"
    # A letter its citizen cancelled while a worker had it on the wire (key: the letter's id).
    letter_cancel = "letter_cancel"


class SendPause(Base):
    """A pause set by staff (campaign) or by the breaker (domain, relay); no `until`: indefinite."""

    __tablename__ = "send_pause"

    kind: Mapped[PauseKind] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SendBudget(Base):
    """A token bucket shared by every worker: `global`, or `domain:<name>`."""

    __tablename__ = "send_budget"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SendSlot(Base):
    """Concurrent connections a worker holds for a domain, until its batch is sent or the lease
    runs out (a crashed worker's slots come back by themselves)."""

    __tablename__ = "send_slot"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SinkMessage(Base):
    """A message received by the local sink instead of a real mailbox; purged like letters."""

    __tablename__ = "sink_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    mail_from: Mapped[str] = mapped_column(String(254))
    rcpt_to: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[bytes] = mapped_column(LargeBinary)
