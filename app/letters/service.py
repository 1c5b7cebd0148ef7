"""Letters: creation (the message bytes are built here, once), hold, release and cancellation.

Holding, releasing and cancelling letters also tell delivery (a letter on the wire right now
must not be recorded as if nothing happened), through app.letters.hooks: delivery stands above
letters and registers itself there. Campaigns' vetting reaches the version functions the same
way (app.campaigns.hooks; registered in app/letters/__init__.py).

Services flush; the caller (request or worker loop) commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import mail
from app.config import Settings, get_settings
from app.db import utcnow
from app.deputies.models import Deputy
from app.letters import hooks
from app.letters.models import Letter, LetterMessage, LetterStatus, sources


async def create_letter(
    session: AsyncSession,
    *,
    deputy: Deputy,
    campaign_id: int,
    campaign_title: str,
    appeal_version_id: int,
    sender_name: str,
    sender_email: str,
    reply_to: bool,
    subject: str,
    body: str,
    settings: Settings | None = None,
    sender_key: str | None = None,
) -> Letter:
    """Queue a letter to `deputy`: build and store its message bytes and Message-ID now."""
    settings = settings or get_settings()
    sender_email = mail.check_address(sender_email.strip(), field="sender_email")
    recipient = mail.check_address(deputy.email.strip(), field="deputy.email")
    sender_name = mail.clean_text(sender_name)
    now = utcnow()
    message_id = mail.new_message_id(settings.mail_from)
    message = mail.build_message(
        mail_from=settings.mail_from,
        sender_name=sender_name,
        sender_email=sender_email if reply_to else None,
        recipient_name=deputy.full_name,
        recipient_email=recipient,
        subject=subject,
        body=body,
        campaign_id=campaign_id,
        campaign_title=campaign_title,
        message_id=message_id,
        date=now,
        dkim=mail.dkim_key(settings),
    )
    letter = Letter(
        campaign_id=campaign_id,
        appeal_version_id=appeal_version_id,
        deputy_id=deputy.id,
        recipient_email=recipient,
        recipient_domain=mail.address_domain(recipient),
        message_id=message_id,
        body=LetterMessage(message=message),
        sender_name=sender_name,
        sender_email=sender_email,
        sender_key=sender_key,
        status=LetterStatus.queued,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(letter)
    await session.flush()
    return letter


async def get_letter(session: AsyncSession, *, letter_id: int) -> Letter | None:
    """One letter by id, or None."""
    return await session.get(Letter, letter_id)


async def _bulk_move(
    session: AsyncSession, to: LetterStatus, *where: object, **values: object
) -> int:
    now = utcnow()
    extra: dict[str, object] = {"finished_at": now} if to is LetterStatus.cancelled else {}
    result = await session.execute(
        update(Letter)
        .where(Letter.status.in_(sources(to)), *where)  # type: ignore[arg-type]
        .values(status=to, updated_at=now, **extra, **values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def hold_version_letters(session: AsyncSession, *, appeal_version_id: int) -> int:
    """Hold the version's unsent letters (its approval was withdrawn); returns how many.

    Letters a worker holds at this moment (`sending`) cannot be recalled from the wire: those
    delivered stay sent, the others become held when the worker records them.
    """
    await hooks.delivery.get().stop_version(
        session, appeal_version_id=appeal_version_id, cancel=False
    )
    return await _bulk_move(
        session,
        LetterStatus.held,
        Letter.appeal_version_id == appeal_version_id,
        Letter.status != LetterStatus.sending,
    )


async def release_version_letters(session: AsyncSession, *, appeal_version_id: int) -> int:
    """Queue the version's held letters again (approval restored); returns how many."""
    await hooks.delivery.get().resume_version(session, appeal_version_id=appeal_version_id)
    return await _bulk_move(
        session,
        LetterStatus.queued,
        Letter.appeal_version_id == appeal_version_id,
        Letter.status == LetterStatus.held,
        next_attempt_at=utcnow(),
    )


async def cancel_version_letters(session: AsyncSession, *, appeal_version_id: int) -> int:
    """Cancel the version's unsent letters for good; returns how many (letters on the wire now:
    as for a hold, but they become cancelled)."""
    await hooks.delivery.get().stop_version(
        session, appeal_version_id=appeal_version_id, cancel=True
    )
    return await _bulk_move(
        session,
        LetterStatus.cancelled,
        Letter.appeal_version_id == appeal_version_id,
        Letter.status != LetterStatus.sending,
    )


async def cancel_letters(session: AsyncSession, *, letter_ids: Sequence[int]) -> int:
    """Cancel these letters unless already final; returns how many are cancelled now.

    A letter a worker has on the wire at this moment cannot be recalled: if the relay accepts
    it, it is sent; otherwise the worker cancels it instead of retrying.
    """
    if not letter_ids:
        return 0
    on_the_wire = list(
        await session.scalars(
            select(Letter.id).where(
                Letter.id.in_(letter_ids), Letter.status == LetterStatus.sending
            )
        )
    )
    await hooks.delivery.get().stop_letters(session, letter_ids=on_the_wire)
    return await _bulk_move(
        session,
        LetterStatus.cancelled,
        Letter.id.in_(letter_ids),
        Letter.status != LetterStatus.sending,
    )


async def status_counts(session: AsyncSession, *, campaign_id: int | None = None) -> dict[str, int]:
    """Letters by status, for one campaign or all."""
    query = select(Letter.status, func.count()).group_by(Letter.status)
    if campaign_id is not None:
        query = query.where(Letter.campaign_id == campaign_id)
    rows = await session.execute(query)
    return {str(status): int(n) for status, n in rows.all()}


async def count_held(session: AsyncSession, *, appeal_version_id: int) -> int:
    """How many letters of this version are held, waiting for a lawyer."""
    count = await session.scalar(
        select(func.count())
        .select_from(Letter)
        .where(Letter.appeal_version_id == appeal_version_id, Letter.status == LetterStatus.held)
    )
    return int(count or 0)
