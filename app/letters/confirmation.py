"""Confirming a submission: its letters are made once, from the campaign as it is at that moment.

The work is split in two so that the write transaction (on SQLite the whole database's write
lock, on PostgreSQL the locks of the rows it touches) holds only the writes and their checks:

1. prepare(), before any write: the pending submission is read; the campaign, its approved texts
   and the deputies come from the process's snapshot (cache.IntakeCache); the deputies this
   address already wrote to are skipped; every letter is rendered and built.
2. confirm(), in the write transaction: the campaign must still be open with the same approved
   texts (locked FOR SHARE on PostgreSQL, so that a lawyer's withdrawal waits for the letters and
   then holds them, or came first and is seen here) and the deputies unchanged; whatever differs
   is read again from the database and its letters built again. The letters and their messages
   are inserted, and the submission is claimed (pending -> confirmed, so a replayed link finds
   nothing to claim) and stripped of personal data in one UPDATE; if the claim finds nothing,
   the caller rolls everything back.

Once per deputy is the unique constraint (campaign, deputy, sender key): a concurrent
confirmation from the same address makes the INSERT fail; the caller starts again, and the
second pass skips that deputy. Services flush or execute; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import AppealVersion, Campaign, VersionStatus
from app.config import Settings
from app.db import UTCDateTime, utcnow
from app.deputies.models import Deputy
from app.errors import Gone
from app.i18n import gettext as _
from app.letters import bulk, flow
from app.letters.cache import CampaignTexts, IntakeCache
from app.letters.submissions import Submission, SubmissionStatus


def _expired() -> Gone:
    return Gone(
        _("This confirmation link has expired. Please fill in the form again."), field="token"
    )


def _used() -> flow.LinkUsed:
    return flow.LinkUsed(_("This link has already been used: nothing was changed."), field="token")


_PENDING = select(
    Submission.id,
    Submission.campaign_id,
    Submission.deputy_ids,
    Submission.skipped_deputy_ids,
    Submission.status,
    Submission.expires_at,
    Submission.full_name,
    Submission.email,
    Submission.locality,
    Submission.postal_address,
    Submission.reply_to,
).where(Submission.token_hash == bindparam("token_hash"))

# The approved versions of an open campaign, locked against a withdrawal on PostgreSQL (the
# campaign's row is not locked: a pause only stops delivery, which holds these letters too).
_APPROVED = (
    select(AppealVersion.id)
    .where(
        AppealVersion.campaign_id == bindparam("campaign_id"),
        AppealVersion.status == VersionStatus.approved,
        exists().where(
            Campaign.id == bindparam("campaign_id"),
            *flow.open_clause(bindparam("now", type_=UTCDateTime())),
        ),
    )
    .order_by(AppealVersion.id)
)

_DEPUTIES = select(Deputy.id, Deputy.is_active, Deputy.updated_at).where(
    Deputy.id.in_(bindparam("ids", expanding=True))
)


@dataclass
class Confirmed:
    status: SubmissionStatus
    letter_ids: list[int]
    skipped_deputy_ids: list[int]
    # The letters just made (all queued), each with its deputy, and the campaign's title: what
    # the answer shows, without reading them back.
    deputies: list[bulk.DeputyCard]
    campaign_title: str


@dataclass(frozen=True, slots=True)
class PendingSubmission:
    token_hash: str
    id: int
    campaign_id: int
    deputy_ids: list[int]
    skipped_deputy_ids: list[int]
    expires_at: dt.datetime
    full_name: str
    email: str
    locality: str
    postal_address: str
    reply_to: bool


@dataclass
class Prepared:
    """A confirmation's letters rendered and built before its write transaction."""

    submission: PendingSubmission
    texts: CampaignTexts
    written: set[int]  # deputies this address already wrote to in the campaign
    letters: bulk.Prepared


async def pending(session: AsyncSession, *, token: str, settings: Settings) -> PendingSubmission:
    """The pending submission of a confirmation link (Gone, NotFound, LinkUsed otherwise)."""
    token_hash = flow.token_hash(flow.confirm_nonce(token, settings=settings))
    row = (await session.execute(_PENDING, {"token_hash": token_hash})).one_or_none()
    if row is None or row.expires_at <= utcnow():
        raise _expired()
    if row.status != SubmissionStatus.pending:
        raise _used()
    return PendingSubmission(
        token_hash,
        row.id,
        row.campaign_id,
        list(row.deputy_ids),
        list(row.skipped_deputy_ids),
        row.expires_at,
        row.full_name or "",
        row.email or "",
        row.locality or "",
        row.postal_address or "",
        row.reply_to,
    )


async def _build(
    session: AsyncSession,
    *,
    submission: PendingSubmission,
    texts: CampaignTexts,
    cards: dict[int, bulk.DeputyCard],
    written: set[int],
    settings: Settings,
) -> bulk.Prepared:
    """The letters to the submission's active deputies not written to yet, in its order."""
    deputies = [
        cards[i]
        for i in submission.deputy_ids
        if i in cards and cards[i].is_active and i not in written
    ]
    campaign = texts.campaign
    citizen = {"full_name": submission.full_name, "locality": submission.locality}
    if campaign.requires_address:
        citizen["address"] = submission.postal_address
    builder = bulk.LetterBuilder(
        campaign_id=campaign.id,
        campaign_title=campaign.title,
        citizen=citizen,
        sender_name=submission.full_name,
        sender_email=submission.email,
        reply_to=submission.reply_to,
        sender_key=flow.sender_key(submission.email, secret=settings.effective_secret_key),
        date=utcnow().date(),
        settings=settings,
    )
    return await bulk.prepare_letters(
        session, deputies=deputies, versions=texts.versions, builder=builder
    )


async def prepare(
    session: AsyncSession, *, token: str, settings: Settings, cache: IntakeCache
) -> Prepared:
    """Read the pending submission of a confirmation link and build its letters, writing
    nothing (Gone, NotFound, LinkUsed as the link requires; NotFound or Gone if the campaign is
    not open). confirm() then does the writes, checking again inside its transaction."""
    submission = await pending(session, token=token, settings=settings)
    texts = await cache.campaign_texts(session, campaign_id=submission.campaign_id)
    ids = submission.deputy_ids
    cards = await cache.deputy_cards(session, ids=ids)
    key = flow.sender_key(submission.email, secret=settings.effective_secret_key)
    written = await flow.already_written(
        session, campaign_id=texts.campaign.id, deputy_ids=ids, key=key
    )
    letters = await _build(
        session, submission=submission, texts=texts, cards=cards, written=written,
        settings=settings,
    )  # fmt: skip
    return Prepared(submission, texts, written, letters)


async def confirm(
    session: AsyncSession, *, prepared: Prepared, settings: Settings, cache: IntakeCache
) -> Confirmed:
    """In the write transaction: check what prepare() used, insert the letters and claim the
    submission (see the module's docstring). On LinkUsed or Gone the caller must roll back."""
    submission, texts, letters = prepared.submission, prepared.texts, prepared.letters
    campaign_id = texts.campaign.id
    now = utcnow()
    version_ids = list(
        await session.scalars(_approved(session), {"campaign_id": campaign_id, "now": now})
    )
    if version_ids != [v.id for v in texts.versions]:
        # A text approved or withdrawn, or the campaign closed, since the snapshot: read it
        # again (NotFound, Gone or Conflict if it is no longer open).
        texts = await cache.campaign_texts(session, campaign_id=campaign_id, fresh=True)
    ids = [d.id for d in letters.deputies]
    if ids:
        now_seen = {
            row.id: (row.is_active, row.updated_at)
            for row in await session.execute(_DEPUTIES, {"ids": ids})
        }
        if any(now_seen.get(d.id) != (d.is_active, d.updated_at) for d in letters.deputies):
            # A deputy deactivated or changed by an import since the snapshot: build again.
            cards = await cache.deputy_cards(session, ids=ids, fresh=True)
            letters = await _build(
                session, submission=submission, texts=texts, cards=cards,
                written=prepared.written, settings=settings,
            )  # fmt: skip
    letter_ids = await bulk.insert_letters(session, letters, versions=texts.versions)
    written_now = {d.id for d in letters.deputies}
    skipped = sorted(
        set(submission.skipped_deputy_ids)
        | {i for i in submission.deputy_ids if i not in written_now}
    )
    claimed = await session.execute(
        update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.status == SubmissionStatus.pending,
            Submission.expires_at > now,
        )
        .values(
            status=SubmissionStatus.confirmed,
            confirmed_at=now,
            letter_ids=letter_ids,
            skipped_deputy_ids=skipped,
            # The letters now hold what they need; the submission keeps nothing personal.
            full_name=None,
            email=None,
            locality=None,
            postal_address=None,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        # Confirmed by a concurrent request, or expired in between.
        row = (await session.execute(_PENDING, {"token_hash": submission.token_hash})).one()
        raise _used() if row.status != SubmissionStatus.pending else _expired()
    return Confirmed(
        SubmissionStatus.confirmed, letter_ids, skipped, letters.deputies, texts.campaign.title
    )


def _approved(session: AsyncSession) -> Select[int]:
    if session.get_bind().dialect.name == "postgresql":
        return _APPROVED.with_for_update(read=True, of=AppealVersion)
    # SQLite needs no lock: the confirmation holds the database's write lock.
    return _APPROVED
