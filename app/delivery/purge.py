"""The retention purge: erase personal data and bodies of letters final for longer than the
retention period, and sink messages as old. What stays is counts (status, campaign, deputy,
dates), never who wrote or what."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.db import utcnow
from app.delivery.models import SinkMessage
from app.letters.models import FINAL, Letter, LetterMessage


async def purge(conn: AsyncConnection, *, settings: Settings) -> int:
    """Erase what the retention period no longer covers; returns how many letters were purged."""
    now = utcnow()
    cutoff = now - dt.timedelta(days=settings.retention_days)
    due = select(Letter.id).where(
        Letter.status.in_(FINAL), Letter.finished_at < cutoff, Letter.purged_at.is_(None)
    )
    await conn.execute(delete(LetterMessage).where(LetterMessage.letter_id.in_(due)))
    result = await conn.execute(
        update(Letter)
        .where(Letter.id.in_(due))
        .values(sender_name=None, sender_email=None, purged_at=now)
    )
    await conn.execute(delete(SinkMessage).where(SinkMessage.received_at < cutoff))
    return int(result.rowcount)
