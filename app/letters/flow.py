"""The citizen's flow: submission, the links' tokens, status, cancel, erase (the campaigns open
for letters are in app.letters.open_campaigns; the confirmation, which makes the letters, in
app.letters.confirmation).

Services flush or execute; the caller commits. Nothing here imports FastAPI.

Tokens: the confirmation link carries a random nonce signed with a timestamp (itsdangerous), so
an expired link is recognised as such even after the purge deleted its row; the status link is
a random token. Only SHA-256 hashes of both are stored. Single use is enforced by a conditional
UPDATE on the submission row (pending -> confirmed, see confirmation.confirm), so two
concurrent confirmations create the letters once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns.models import Campaign
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, Gone, NotFound
from app.i18n import gettext as _
from app.letters import hooks
from app.letters import service as letters_service
from app.letters.models import FINAL, Letter, LetterMessage, LetterStatus
from app.letters.schemas import SenderIn
from app.letters.submissions import Submission, SubmissionStatus

# What the citizen sees of a letter's status.
SHOWN_STATUS = {
    LetterStatus.queued: "queued",
    LetterStatus.sending: "queued",
    LetterStatus.deferred: "queued",
    LetterStatus.held: "queued",
    LetterStatus.sent: "sent",
    LetterStatus.failed: "failed",
    LetterStatus.cancelled: "cancelled",
}
CANCELLABLE = frozenset({LetterStatus.queued, LetterStatus.deferred, LetterStatus.held})


class AlreadyWritten(Conflict):
    code = "duplicate"


class LinkUsed(Conflict):
    code = "link_used"


# --- keys and tokens ---------------------------------------------------------------------------


def sender_key(email: str, *, secret: str) -> str:
    """A keyed hash of the lower-cased address: equal for the same address, opaque otherwise."""
    return hmac.new(secret.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.effective_secret_key, salt="appeals.confirm")


def confirm_nonce(token: str, *, settings: Settings) -> str:
    """The nonce of a valid confirmation token; Gone if expired, NotFound if forged."""
    try:
        nonce = _signer(settings).unsign(token.encode(), max_age=int(settings.confirm_hours * 3600))
    except SignatureExpired:
        raise Gone(
            _("This confirmation link has expired. Please fill in the form again."),
            field="token",
        ) from None
    except BadSignature:
        raise NotFound(  # noqa: B904 (the signature error says nothing useful)
            _("This link is not valid. Please check it was copied whole."), field="token"
        )
    return nonce.decode()


# --- the sender's letters ----------------------------------------------------------------------


async def already_written(
    session: AsyncSession, *, campaign_id: int, deputy_ids: Sequence[int], key: str
) -> set[int]:
    """Those of the deputies to whom this sender key has a letter in the campaign."""
    if not deputy_ids:
        return set()
    rows = await session.scalars(_WRITTEN, {"campaign_id": campaign_id, "key": key})
    return set(rows).intersection(deputy_ids)


# A range of uq_letter_campaign_id_sender_key_deputy_id: the few letters of one sender in one
# campaign.
_WRITTEN = select(Letter.deputy_id).where(
    Letter.campaign_id == bindparam("campaign_id"), Letter.sender_key == bindparam("key")
)


class SenderValues(Protocol):
    """What a letter's text may say of its sender: SenderIn, or a pending submission's data."""

    @property
    def full_name(self) -> str: ...

    @property
    def locality(self) -> str: ...

    @property
    def postal_address(self) -> str: ...


def citizen_values(sender: SenderValues, *, campaign: CampaignRef) -> dict[str, str]:
    values = {"full_name": sender.full_name, "locality": sender.locality}
    if campaign.requires_address:
        values["address"] = sender.postal_address
    return values


# --- submission --------------------------------------------------------------------------------


class CampaignRef(Protocol):
    """What a submission needs of its campaign: an ORM Campaign or a cached snapshot."""

    @property
    def id(self) -> int: ...

    @property
    def requires_address(self) -> bool: ...


@dataclass
class Submitted:
    deputy_ids: list[int]  # those chosen; the confirmation skips any already written to
    expires_at: dt.datetime
    confirm_token: str
    status_token: str
    # The row saving.save writes; the sender's data: never in a repr (tracebacks, logs).
    row: dict[str, Any] = field(default_factory=dict, repr=False)


def submit(
    *,
    campaign: CampaignRef,
    region_code: str,
    deputy_ids: Sequence[int],
    sender: SenderIn,
    reply_to: bool,
    language: str,
    settings: Settings,
) -> Submitted:
    """A submission held until its e-mail link is followed, ready for saving.save.

    Whether this address has written to these deputies before is not looked up here: the
    answer would tell whoever types an address into the form whether its owner took part. The
    confirmation, which only the mailbox's owner can reach, skips those deputies and says so."""
    nonce = secrets.token_urlsafe(24)
    status_token = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + dt.timedelta(hours=settings.confirm_hours)
    ids = list(deputy_ids)
    row = {
        "campaign_id": campaign.id,
        "region_code": region_code,
        "deputy_ids": ids,
        "letter_ids": [],
        "skipped_deputy_ids": [],
        "status": SubmissionStatus.pending,
        "full_name": sender.full_name,
        "email": sender.email,
        "locality": sender.locality,
        "postal_address": sender.postal_address if campaign.requires_address else None,
        "reply_to": reply_to,
        "language": language,
        "token_hash": token_hash(nonce),
        "status_hash": token_hash(status_token),
        "created_at": now,
        "expires_at": expires_at,
    }
    token = _signer(settings).sign(nonce.encode()).decode()
    return Submitted(ids, expires_at, token, status_token, row)


# --- status, cancel, erase ---------------------------------------------------------------------


@dataclass
class Status:
    submission: Submission
    campaign: Campaign
    letters: list[Letter]


async def get_status(session: AsyncSession, *, token: str) -> Status:
    """A submission and its letters (deputies loaded) by its status token; NotFound otherwise."""
    submission = await session.scalar(
        select(Submission)
        .where(Submission.status_hash == token_hash(token))
        .execution_options(populate_existing=True)
    )
    if submission is None:
        raise NotFound(_("This status link is not valid, or the data behind it was deleted."))
    return await status_of(session, submission=submission)


async def status_of(session: AsyncSession, *, submission: Submission) -> Status:
    """A submission with its campaign and letters (deputies loaded)."""
    campaign = await session.get(Campaign, submission.campaign_id)
    assert campaign is not None
    letters: list[Letter] = []
    if submission.letter_ids:
        letters = list(
            await session.scalars(
                select(Letter)
                .where(Letter.id.in_(submission.letter_ids))
                .options(selectinload(Letter.deputy))
                .order_by(Letter.id)
                .execution_options(populate_existing=True)
            )
        )
    return Status(submission, campaign, letters)


async def cancel(
    session: AsyncSession, *, token: str, letter_ids: Sequence[int] | None = None
) -> int:
    """Cancel the submission's letters not yet sent (those given, or all); returns how many."""
    status = await get_status(session, token=token)
    own = set(status.submission.letter_ids)
    chosen = own if letter_ids is None else own & set(letter_ids)
    return await letters_service.cancel_letters(session, letter_ids=sorted(chosen))


async def erase(session: AsyncSession, *, token: str) -> int:
    """Cancel what is not sent yet and erase every personal datum of the submission and its
    letters (name, addresses, message bytes, the sender key); returns the letters erased.

    A letter that a worker is transmitting at this instant keeps its bytes until it is final;
    the retention purge erases it then.
    """
    status = await get_status(session, token=token)
    submission = status.submission
    await hooks.delivery.get().erase_sink_messages(
        session, letter_ids=submission.letter_ids, address=submission.email
    )
    if submission.letter_ids:
        await letters_service.cancel_letters(session, letter_ids=submission.letter_ids)
    now = utcnow()
    erased = 0
    if submission.letter_ids:
        result = await session.execute(
            update(Letter)
            .where(Letter.id.in_(submission.letter_ids), Letter.status.in_(FINAL))
            .values(
                sender_name=None,
                sender_email=None,
                sender_key=None,
                purged_at=func.coalesce(Letter.purged_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        erased = int(result.rowcount)  # type: ignore[attr-defined]
        final = select(Letter.id).where(
            Letter.id.in_(submission.letter_ids), Letter.status.in_(FINAL)
        )
        await session.execute(delete(LetterMessage).where(LetterMessage.letter_id.in_(final)))
    submission.full_name = submission.email = submission.locality = None
    submission.postal_address = None
    submission.status = SubmissionStatus.erased
    submission.erased_at = now
    await session.flush()
    return erased


async def purge(session: AsyncSession, *, settings: Settings) -> int:
    """Delete unconfirmed submissions past their expiry, and the others past the retention
    period (their status links stop working); returns how many rows were deleted."""
    now = utcnow()
    cutoff = now - dt.timedelta(days=settings.retention_days)
    result = await session.execute(
        delete(Submission).where(
            or_(
                and_(Submission.status == SubmissionStatus.pending, Submission.expires_at <= now),
                Submission.created_at < cutoff,
            )
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
