"""Delivery services: campaign pause and resume, progress, the sink's messages, the purge.

Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.config import Settings
from app.delivery import pacing
from app.delivery import purge as purge_module
from app.delivery.models import PauseKind, SendPause, SinkMessage
from app.errors import NotFound
from app.letters.models import FINAL, Letter, LetterStatus


async def pause_campaign(session: AsyncSession, *, campaign_id: int, reason: str = "") -> None:
    """Stop claiming the campaign's letters until resumed (letters in flight still finish)."""
    conn = await session.connection()
    await pacing.set_pause(
        conn, kind=PauseKind.campaign, key=str(campaign_id), until=None, reason=reason
    )


async def resume_campaign(session: AsyncSession, *, campaign_id: int) -> bool:
    """Lift the campaign's pause; False if it was not paused."""
    result = await session.execute(
        delete(SendPause).where(
            SendPause.kind == PauseKind.campaign, SendPause.key == str(campaign_id)
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def stop_version(session: AsyncSession, *, appeal_version_id: int, cancel: bool) -> None:
    """Never claim the version's letters again (until `resume_version`), and turn those a worker
    holds right now into held (or cancelled) letters if they are not delivered."""
    conn = await session.connection()
    await session.execute(
        delete(SendPause).where(
            SendPause.kind.in_([PauseKind.version_hold, PauseKind.version_cancel]),
            SendPause.key == str(appeal_version_id),
        )
    )
    kind = PauseKind.version_cancel if cancel else PauseKind.version_hold
    reason = "version cancelled" if cancel else "approval withdrawn"
    await pacing.set_pause(conn, kind=kind, key=str(appeal_version_id), until=None, reason=reason)


async def resume_version(session: AsyncSession, *, appeal_version_id: int) -> None:
    """Lift a hold set by `stop_version` (a cancelled version stays stopped)."""
    await session.execute(
        delete(SendPause).where(
            SendPause.kind == PauseKind.version_hold, SendPause.key == str(appeal_version_id)
        )
    )


async def stop_letters(session: AsyncSession, *, letter_ids: Sequence[int]) -> None:
    """Ask the workers holding these letters to cancel them unless the relay accepts them."""
    conn = await session.connection()
    for letter_id in letter_ids:
        await pacing.set_pause(
            conn,
            kind=PauseKind.letter_cancel,
            key=str(letter_id),
            until=None,
            reason="cancelled by the sender",
        )


async def list_pauses(session: AsyncSession) -> list[SendPause]:
    """Pauses in force now: staff's and the breaker's."""
    now = dt.datetime.now(dt.UTC)
    rows = await session.scalars(
        select(SendPause)
        .where(
            (SendPause.until.is_(None)) | (SendPause.until > now),
            SendPause.kind != PauseKind.letter_cancel,
        )
        .order_by(SendPause.kind, SendPause.key)
    )
    return list(rows)


@dataclass(frozen=True)
class CampaignProgress:
    campaign_id: int
    counts: dict[str, int]
    paused: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """Every letter has a final status (held letters are not final)."""
        return self.total > 0 and all(LetterStatus(s) in FINAL for s in self.counts)


async def campaign_progress(session: AsyncSession, *, campaign_id: int) -> CampaignProgress:
    """The campaign's letters by status and whether delivery is finished."""
    rows = await session.execute(
        select(Letter.status, func.count())
        .where(Letter.campaign_id == campaign_id)
        .group_by(Letter.status)
    )
    paused = await session.scalar(
        select(func.count()).where(
            SendPause.kind == PauseKind.campaign, SendPause.key == str(campaign_id)
        )
    )
    return CampaignProgress(
        campaign_id, {str(s): int(n) for s, n in rows.all()}, paused=bool(paused)
    )


async def purge(session: AsyncSession, *, settings: Settings) -> int:
    """Erase personal data past the retention period; returns how many letters."""
    return await purge_module.purge(await session.connection(), settings=settings)


@dataclass(frozen=True)
class SinkView:
    id: int
    received_at: dt.datetime
    rcpt_to: str
    message_id: str
    subject: str
    headers: list[tuple[str, str]]
    body: str


async def list_sink_messages(
    session: AsyncSession, *, limit: int = 50, offset: int = 0
) -> list[SinkMessage]:
    """The sink's messages, newest first (the data column is not loaded)."""
    rows = await session.scalars(
        select(SinkMessage)
        .options(defer(SinkMessage.data))
        .order_by(SinkMessage.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def count_sink_messages(session: AsyncSession) -> int:
    """How many messages the sink holds."""
    return int(await session.scalar(select(func.count()).select_from(SinkMessage)) or 0)


async def erase_sink_messages(
    session: AsyncSession, *, letter_ids: Sequence[int], address: str | None
) -> int:
    """Delete the sink's copies of a citizen's mail: their letters (by Message-ID) and what was
    sent to their address or the letters' sender address (the confirmation e-mail); returns how
    many were deleted. Call it before the letters' sender data is erased."""
    addresses = {address.lower()} if address else set()
    message_ids: list[str] = []
    if letter_ids:
        rows = await session.execute(
            select(Letter.message_id, Letter.sender_email).where(Letter.id.in_(letter_ids))
        )
        for message_id, sender_email in rows:
            message_ids.append(message_id)
            if sender_email:
                addresses.add(sender_email.lower())
    conditions = []
    if message_ids:
        conditions.append(SinkMessage.message_id.in_(message_ids))
    if addresses:
        conditions.append(func.lower(SinkMessage.rcpt_to).in_(sorted(addresses)))
    if not conditions:
        return 0
    result = await session.execute(
        delete(SinkMessage).where(or_(*conditions)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def get_sink_message(session: AsyncSession, *, message_id: int) -> SinkView:
    """One sink message, decoded for reading; NotFound otherwise."""
    row = await session.get(SinkMessage, message_id)
    if row is None:
        raise NotFound("No such message in the sink.", field="id")
    parsed = message_from_bytes(row.data, policy=policy.default)
    body_part = parsed.get_body(preferencelist=("plain",))
    body = body_part.get_content() if body_part is not None else ""
    return SinkView(
        id=row.id,
        received_at=row.received_at,
        rcpt_to=row.rcpt_to,
        message_id=row.message_id,
        subject=row.subject,
        headers=[(name, str(value)) for name, value in parsed.items()],
        body=str(body),
    )
