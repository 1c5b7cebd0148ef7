"""The citizen's flow: open campaigns, submission, confirmation by e-mail, status, cancel, erase.

Services flush; the caller commits. Nothing here imports FastAPI.

Tokens: the confirmation link carries a random nonce signed with a timestamp (itsdangerous), so
an expired link is recognised as such even after the purge deleted its row; the status link is
a random token. Only SHA-256 hashes of both are stored. Single use is enforced by a conditional
UPDATE on the submission row (pending -> confirmed), so two concurrent confirmations create the
letters once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import rendering
from app.campaigns import service as campaigns_service
from app.campaigns.models import AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.config import Settings
from app.db import utcnow
from app.deputies import service as deputies_service
from app.deputies.models import Deputy, Legislature, Region
from app.errors import Conflict, Gone, NotFound
from app.i18n import gettext as _
from app.letters import bulk
from app.letters import service as letters_service
from app.letters.models import FINAL, Letter, LetterMessage, LetterStatus
from app.letters.schemas import SenderIn
from app.letters.submissions import Submission, SubmissionStatus

MAX_DEPUTIES = 300
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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.effective_secret_key, salt="appeals.confirm")


def _confirm_nonce(token: str, *, settings: Settings) -> str:
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


# --- campaigns ---------------------------------------------------------------------------------


def _open_clause(now: dt.datetime) -> list[object]:
    return [
        Campaign.status == CampaignStatus.published,
        or_(Campaign.opens_at.is_(None), Campaign.opens_at <= now),
        or_(Campaign.closes_at.is_(None), Campaign.closes_at > now),
        select(AppealVersion.id)
        .where(
            AppealVersion.campaign_id == Campaign.id,
            AppealVersion.status == VersionStatus.approved,
        )
        .exists(),
    ]


async def list_open_campaigns(session: AsyncSession) -> list[Campaign]:
    """Published campaigns within their dates that have an approved text, newest first."""
    result = await session.scalars(
        select(Campaign)
        .where(*_open_clause(utcnow()))  # type: ignore[arg-type]
        .options(selectinload(Campaign.regions))
        .order_by(Campaign.id.desc())
    )
    return list(result)


async def get_open_campaign(session: AsyncSession, *, slug: str) -> Campaign:
    """An open campaign by slug (its regions loaded when it targets some); NotFound if there is
    none, Gone if it is not open now."""
    campaign: Campaign | None = await session.scalar(
        select(Campaign).where(Campaign.slug == slug, *_open_clause(utcnow()))  # type: ignore[arg-type]
    )
    if campaign is None:
        status = await session.scalar(select(Campaign.status).where(Campaign.slug == slug))
        if status is None or status == CampaignStatus.draft:
            raise NotFound(_("There is no such campaign."), field="slug")
        raise Gone(_("This campaign is not accepting letters at the moment."), field="slug")
    if not campaign.all_regions:
        await session.refresh(campaign, ["regions"])
    return campaign


async def campaign_text(session: AsyncSession, *, campaign: Campaign) -> tuple[str, str]:
    """The first approved version's subject and body with placeholders for names."""
    versions = await campaigns_service.approved_versions(session, campaign_id=campaign.id)
    if not versions:
        raise Gone(_("This campaign is not accepting letters at the moment."), field="slug")
    version = versions[0]
    deputy = {name: f"[{_('deputy')}: {name}]" for name in rendering.DEPUTY_FIELDS}
    deputy["salutation"] = _("[Dear deputy]")
    deputy["full_name"] = _("[the deputy's name]")
    citizen = {
        "full_name": _("[your name]"),
        "locality": _("[your locality]"),
        "address": _("[your postal address]"),
    }
    return rendering.render(
        version.subject,
        version.body,
        deputy=deputy,
        citizen=citizen,
        date=utcnow().date(),
        address_allowed=campaign.requires_address,
    )


async def campaign_regions(session: AsyncSession, *, campaign: Campaign) -> list[Region]:
    """The regions a campaign targets that have active deputies at its level, by code."""
    query = (
        select(Region)
        .join(Legislature, Legislature.region_id == Region.id)
        .join(Deputy, Deputy.legislature_id == Legislature.id)
        .where(Legislature.level == campaign.legislature_level, Deputy.is_active)
        .distinct()
        .order_by(Region.code)
    )
    if not campaign.all_regions:
        query = query.where(Region.id.in_([region.id for region in campaign.regions]))
    return list(await session.scalars(query))


async def campaign_deputies(
    session: AsyncSession, *, campaign: Campaign, region_code: str
) -> tuple[Region, list[Deputy]]:
    """The region (NotFound if the campaign does not target it) and its deputies to write to."""
    region = await deputies_service.get_region(session, code=region_code)
    if not campaign.all_regions and region.id not in {r.id for r in campaign.regions}:
        raise NotFound(_("This campaign does not write to deputies of this region."), field="code")
    deputies = await deputies_service.list_active_deputies(session, region=region)
    return region, [d for d in deputies if d.legislature.level == campaign.legislature_level]


async def campaign_deputy_ids(
    session: AsyncSession, *, campaign: Campaign, region_code: str
) -> list[int]:
    """The ids of the deputies the campaign writes to in this region (none if it does not)."""
    query = (
        select(Deputy.id)
        .join(Legislature, Deputy.legislature_id == Legislature.id)
        .join(Region, Legislature.region_id == Region.id)
        .where(
            Region.code == region_code.upper(),
            Legislature.level == campaign.legislature_level,
            Deputy.is_active,
        )
    )
    if not campaign.all_regions:
        query = query.where(Region.id.in_([region.id for region in campaign.regions]))
    return list(await session.scalars(query))


async def already_written(
    session: AsyncSession, *, campaign_id: int, deputy_ids: Sequence[int], key: str
) -> set[int]:
    """Those of the deputies to whom this sender key has a letter in the campaign."""
    if not deputy_ids:
        return set()
    rows = await session.scalars(
        select(Letter.deputy_id).where(
            Letter.campaign_id == campaign_id,
            Letter.sender_key == key,
            Letter.deputy_id.in_(deputy_ids),
        )
    )
    return set(rows)


def citizen_values(sender: SenderIn, *, campaign: CampaignRef) -> dict[str, str]:
    values = {"full_name": sender.full_name, "locality": sender.locality}
    if campaign.requires_address:
        values["address"] = sender.postal_address
    return values


@dataclass
class PreviewLetter:
    deputy: Deputy
    subject: str
    body: str


async def preview_letters(
    session: AsyncSession, *, campaign: Campaign, deputies: Sequence[Deputy], sender: SenderIn
) -> list[PreviewLetter]:
    """The letters as they will be sent (with one approved variant, the first, when several)."""
    versions = await campaigns_service.approved_versions(session, campaign_id=campaign.id)
    if not versions:
        raise Gone(_("This campaign is not accepting letters at the moment."), field="slug")
    citizen = citizen_values(sender, campaign=campaign)
    today = utcnow().date()
    letters = []
    for deputy in deputies:
        subject, body = campaigns_service.render_letter(
            versions[0], deputy=deputy, citizen=citizen, date=today
        )
        letters.append(PreviewLetter(deputy, subject, body))
    return letters


# --- submission --------------------------------------------------------------------------------


class CampaignRef(Protocol):
    """What a submission needs of its campaign: an ORM Campaign or a cached snapshot."""

    @property
    def id(self) -> int: ...

    @property
    def requires_address(self) -> bool: ...


@dataclass
class Submitted:
    submission: Submission
    confirm_token: str
    status_token: str
    skipped_deputy_ids: list[int] = field(default_factory=list)


async def submit(
    session: AsyncSession,
    *,
    campaign: CampaignRef,
    region_code: str,
    deputy_ids: Sequence[int],
    sender: SenderIn,
    reply_to: bool,
    language: str,
    settings: Settings,
) -> Submitted:
    """Hold a submission until its e-mail link is followed; AlreadyWritten if nothing is left."""
    key = sender_key(sender.email, secret=settings.effective_secret_key)
    ids = list(deputy_ids)
    written = await already_written(session, campaign_id=campaign.id, deputy_ids=ids, key=key)
    remaining = [i for i in ids if i not in written]
    if not remaining:
        raise AlreadyWritten(
            _("You have already written to these deputies in this campaign."), field="deputies"
        )
    nonce = secrets.token_urlsafe(24)
    status_token = secrets.token_urlsafe(32)
    now = utcnow()
    submission = Submission(
        campaign_id=campaign.id,
        region_code=region_code,
        deputy_ids=remaining,
        letter_ids=[],
        skipped_deputy_ids=sorted(written),
        status=SubmissionStatus.pending,
        full_name=sender.full_name,
        email=sender.email,
        locality=sender.locality,
        postal_address=sender.postal_address if campaign.requires_address else None,
        reply_to=reply_to,
        language=language,
        token_hash=_hash(nonce),
        status_hash=_hash(status_token),
        created_at=now,
        expires_at=now + dt.timedelta(hours=settings.confirm_hours),
    )
    session.add(submission)
    await session.flush()
    token = _signer(settings).sign(nonce.encode()).decode()
    return Submitted(submission, token, status_token, sorted(written))


# --- confirmation ------------------------------------------------------------------------------


@dataclass
class Confirmed:
    submission: Submission
    letter_ids: list[int]
    skipped_deputy_ids: list[int]
    # The letters just made (all queued), each with its deputy, and the campaign's title: what
    # the answer shows, without reading them back.
    deputies: list[Deputy] = field(default_factory=list)
    campaign_title: str = ""


async def find_by_confirm_token(
    session: AsyncSession, *, token: str, settings: Settings
) -> Submission:
    """The pending submission of a confirmation link (Gone, NotFound, LinkUsed otherwise)."""
    nonce = _confirm_nonce(token, settings=settings)
    submission = await session.scalar(
        select(Submission).where(Submission.token_hash == _hash(nonce))
    )
    if submission is None:
        raise Gone(
            _("This confirmation link has expired. Please fill in the form again."), field="token"
        )
    if submission.status != SubmissionStatus.pending:
        raise LinkUsed(_("This link has already been used: nothing was changed."), field="token")
    if submission.expires_at <= utcnow():
        raise Gone(
            _("This confirmation link has expired. Please fill in the form again."), field="token"
        )
    return submission


@dataclass
class PreparedConfirmation:
    """A confirmation's letters rendered and built before its write transaction."""

    submission_id: int
    letters: bulk.Prepared


def _sender_of(submission: Submission) -> SenderIn:
    assert submission.email
    assert submission.full_name
    return SenderIn.model_construct(
        full_name=submission.full_name,
        email=submission.email,
        locality=submission.locality or "",
        postal_address=submission.postal_address or "",
    )


async def _deputies_to_write(
    session: AsyncSession, *, submission: Submission, campaign_id: int, key: str
) -> tuple[list[Deputy], set[int]]:
    """The submission's active deputies in its order, and those this key already wrote to."""
    deputies = await deputies_service.get_deputies(session, ids=submission.deputy_ids)
    deputies = [d for d in deputies if d.is_active]
    deputies.sort(key=lambda d: submission.deputy_ids.index(d.id))
    written = await already_written(
        session, campaign_id=campaign_id, deputy_ids=[d.id for d in deputies], key=key
    )
    return deputies, written


async def _prepare_letters(
    session: AsyncSession,
    *,
    submission: Submission,
    campaign: Campaign,
    deputies: list[Deputy],
    key: str,
    settings: Settings,
) -> bulk.Prepared:
    """The submission's letters to these deputies, rendered and built (nothing written)."""
    sender = _sender_of(submission)
    return await bulk.prepare_letters(
        session,
        deputies=deputies,
        campaign_id=campaign.id,
        campaign_title=campaign.title,
        citizen=citizen_values(sender, campaign=campaign),
        sender_name=sender.full_name,
        sender_email=sender.email,
        reply_to=submission.reply_to,
        sender_key=key,
        date=utcnow().date(),
        settings=settings,
    )


async def prepare_confirmation(
    session: AsyncSession, *, token: str, settings: Settings
) -> PreparedConfirmation:
    """Read the pending submission of a confirmation link and build its letters, writing
    nothing (Gone, NotFound, LinkUsed as find_by_confirm_token). confirm() then does the
    writes, with every check made again inside its transaction."""
    submission = await find_by_confirm_token(session, token=token, settings=settings)
    campaign = await get_open_campaign(
        session, slug=await _campaign_slug(session, submission.campaign_id)
    )
    sender = _sender_of(submission)
    key = sender_key(sender.email, secret=settings.effective_secret_key)
    deputies, written = await _deputies_to_write(
        session, submission=submission, campaign_id=campaign.id, key=key
    )
    letters = await _prepare_letters(
        session,
        submission=submission,
        campaign=campaign,
        deputies=[d for d in deputies if d.id not in written],
        key=key,
        settings=settings,
    )
    return PreparedConfirmation(submission.id, letters)


async def confirm(
    session: AsyncSession,
    *,
    token: str,
    settings: Settings,
    prepared: PreparedConfirmation | None = None,
) -> Confirmed:
    """Create the letters of a submission, once. The caller commits (and retries once on an
    IntegrityError: a concurrent confirmation by the same address wrote to a deputy first).

    With `prepared` (prepare_confirmation, before the write transaction) the letters built there
    are inserted; the link, the campaign, the approved versions, the deputies and the
    once-per-deputy rule are all checked again here, inside the transaction."""
    nonce = _confirm_nonce(token, settings=settings)
    now = utcnow()
    # The claim comes first in the transaction: it takes the write lock on SQLite and the row
    # lock on PostgreSQL, so a concurrent confirmation waits, then finds the row confirmed.
    claimed = await session.execute(
        update(Submission)
        .where(
            Submission.token_hash == _hash(nonce),
            Submission.status == SubmissionStatus.pending,
            Submission.expires_at > now,
        )
        .values(status=SubmissionStatus.confirmed, confirmed_at=now)
        .returning(Submission.id)
        .execution_options(synchronize_session=False)
    )
    submission_id = claimed.scalar_one_or_none()
    if submission_id is None:
        # Raises the reason (used, expired or unknown).
        await find_by_confirm_token(session, token=token, settings=settings)
        raise LinkUsed(_("This link has already been used: nothing was changed."), field="token")
    submission = await session.scalar(
        select(Submission)
        .where(Submission.id == submission_id)
        .execution_options(populate_existing=True)
    )
    assert submission is not None
    sender = _sender_of(submission)
    campaign = await get_open_campaign(
        session, slug=await _campaign_slug(session, submission.campaign_id)
    )
    key = sender_key(sender.email, secret=settings.effective_secret_key)
    letters: bulk.Prepared | None = None
    if prepared is not None and prepared.submission_id == submission_id:
        ids = submission.deputy_ids
        active = set(
            await session.scalars(select(Deputy.id).where(Deputy.id.in_(ids), Deputy.is_active))
        )
        written = await already_written(
            session, campaign_id=campaign.id, deputy_ids=[i for i in ids if i in active], key=key
        )
        wanted = [i for i in ids if i in active and i not in written]
        built = {d.id: d for d in prepared.letters.deputies}
        if all(i in built for i in wanted):  # else something changed: build them all here
            writing = [built[i] for i in wanted]
            letters = prepared.letters
    if letters is None:
        deputies, written = await _deputies_to_write(
            session, submission=submission, campaign_id=campaign.id, key=key
        )
        writing = [d for d in deputies if d.id not in written]
        letters = await _prepare_letters(
            session,
            submission=submission,
            campaign=campaign,
            deputies=writing,
            key=key,
            settings=settings,
        )
    letter_ids = await bulk.insert_letters(session, letters, deputy_ids={d.id for d in writing})
    skipped = sorted(set(submission.skipped_deputy_ids) | written)
    submission.letter_ids = letter_ids
    submission.skipped_deputy_ids = skipped
    # The letters now hold what they need; the submission keeps nothing personal.
    submission.full_name = submission.email = submission.locality = None
    submission.postal_address = None
    await session.flush()
    return Confirmed(submission, letter_ids, skipped, writing, campaign.title)


async def _campaign_slug(session: AsyncSession, campaign_id: int) -> str:
    slug = await session.scalar(select(Campaign.slug).where(Campaign.id == campaign_id))
    if slug is None:
        raise NotFound(_("There is no such campaign."), field="slug")
    return slug


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
        .where(Submission.status_hash == _hash(token))
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
