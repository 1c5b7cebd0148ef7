"""Campaigns, appeal texts and their vetting; the variant choice and rendering used for letters.

Roles are enforced here (not only in the routes), so that every caller, pages, API or command
line, gets the same rules: editors write, lawyers vet (never their own wording), admins and
editors change a campaign's status.

Hook points for the delivery engine (letters are not owned here):
- `choose_version(session, campaign_id=, deputy_id=)` picks the approved version a new letter
  uses (variants in turn per deputy); the letter stores that version's id.
- `render_letter(version, deputy=, citizen=, date=)` renders its subject and body.
- `withdraw_approval(...)` returns the withdrawn version: from then on letters of that version
  must be held (see the comment in that function for where delivery hooks in);
  `version_is_sendable(session, version_id=)` is the check the send loop makes before sending.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import rendering
from app.campaigns.models import (
    AppealText,
    AppealVersion,
    Campaign,
    CampaignStatus,
    VersionRotation,
    VersionStatus,
)
from app.campaigns.schemas import CampaignIn
from app.db import utcnow
from app.delivery import service as delivery_service
from app.deputies import service as deputies_service
from app.deputies.models import Deputy, Region
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.letters import service as letters_service
from app.staff import service as staff_service
from app.staff.models import Role, StaffMember

# --- state machines ----------------------------------------------------------------------------

CAMPAIGN_TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.draft: frozenset({CampaignStatus.published, CampaignStatus.closed}),
    CampaignStatus.published: frozenset({CampaignStatus.paused, CampaignStatus.closed}),
    CampaignStatus.paused: frozenset({CampaignStatus.published, CampaignStatus.closed}),
    CampaignStatus.closed: frozenset(),
}

VERSION_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.draft: frozenset({VersionStatus.in_review}),
    VersionStatus.in_review: frozenset({VersionStatus.approved, VersionStatus.rejected}),
    VersionStatus.approved: frozenset({VersionStatus.withdrawn, VersionStatus.superseded}),
    VersionStatus.rejected: frozenset(),
    VersionStatus.withdrawn: frozenset(),
    # Its letters may still be queued: a lawyer can still take the approval back.
    VersionStatus.superseded: frozenset({VersionStatus.withdrawn}),
}


# Letters of these versions may be sent; a withdrawn version's letters are held.
SENDABLE_VERSION_STATUSES = frozenset({VersionStatus.approved, VersionStatus.superseded})


def move_campaign(campaign: Campaign, to: CampaignStatus) -> None:
    """Change a campaign's status along CAMPAIGN_TRANSITIONS; Conflict otherwise."""
    if to not in CAMPAIGN_TRANSITIONS[CampaignStatus(campaign.status)]:
        raise Conflict(
            "A campaign that is {status} cannot become {to}.",
            field="status",
            status=CampaignStatus(campaign.status),
            to=to,
        )
    campaign.status = to


def move_version(version: AppealVersion, to: VersionStatus) -> None:
    """Change a version's status along VERSION_TRANSITIONS; Conflict otherwise."""
    if to not in VERSION_TRANSITIONS[VersionStatus(version.status)]:
        raise Conflict(
            "A version that is {status} cannot become {to}.",
            field="status",
            status=VersionStatus(version.status),
            to=to,
        )
    version.status = to


async def _flush_unique(session: AsyncSession, conflict: Conflict) -> None:
    """Flush; a unique constraint hit by a concurrent request is this Conflict, not a 500."""
    try:
        await session.flush()
    except IntegrityError:
        raise conflict from None


# Bumped by every staff action on a campaign, text or version: the citizen flow's per-process
# snapshots (app.letters.cache) start afresh when it changes.
generation = 0


async def _audit(
    session: AsyncSession,
    *,
    actor: StaffMember,
    action: str,
    obj: Campaign | AppealText | AppealVersion,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a staff action on a campaign, text or version; the action names its object type."""
    global generation
    generation += 1
    await staff_service.record(
        session,
        actor=actor,
        action=action,
        object_type=action.split(".", 1)[0],
        object_id=obj.id,
        before=before,
        after=after,
    )


def _campaign_state(campaign: Campaign) -> dict[str, Any]:
    return {
        "slug": campaign.slug,
        "title": campaign.title,
        "description": campaign.description,
        "status": str(campaign.status),
        "all_regions": campaign.all_regions,
        "region_codes": campaign.region_codes,
        "legislature_level": str(campaign.legislature_level),
        "requires_address": campaign.requires_address,
        "opens_at": campaign.opens_at.isoformat() if campaign.opens_at else None,
        "closes_at": campaign.closes_at.isoformat() if campaign.closes_at else None,
    }


def _version_state(version: AppealVersion) -> dict[str, Any]:
    return {"status": str(version.status), "comment": version.review_comment}


# --- campaigns ---------------------------------------------------------------------------------

_CAMPAIGN_FULL = (
    selectinload(Campaign.regions),
    selectinload(Campaign.texts).selectinload(AppealText.versions),
)


async def list_campaigns(session: AsyncSession) -> Sequence[Campaign]:
    """Every campaign, newest first, with its regions."""
    result = await session.scalars(
        select(Campaign).options(selectinload(Campaign.regions)).order_by(Campaign.id.desc())
    )
    return result.all()


async def get_campaign(session: AsyncSession, *, campaign_id: int) -> Campaign:
    """One campaign with its regions, texts and versions; NotFound otherwise."""
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .options(*_CAMPAIGN_FULL)
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise NotFound("No campaign with id {id}.", field="campaign_id", id=campaign_id)
    return campaign


async def _regions(session: AsyncSession, codes: list[str]) -> list[Region]:
    if not codes:
        return []
    found = list(await session.scalars(select(Region).where(Region.code.in_(codes))))
    missing = sorted(set(codes) - {region.code for region in found})
    if missing:
        raise InvalidInput(
            "Unknown region code(s): {codes}.", field="region_codes", codes=", ".join(missing)
        )
    return found


async def create_campaign(
    session: AsyncSession, *, data: CampaignIn, actor: StaffMember
) -> Campaign:
    """A new draft campaign; Conflict if the slug is taken."""
    staff_service.require(actor, Role.editor)
    if await session.scalar(select(Campaign.id).where(Campaign.slug == data.slug)) is not None:
        raise Conflict("The slug {slug!r} is taken.", field="slug", slug=data.slug)
    campaign = Campaign(
        slug=data.slug,
        title=data.title,
        description=data.description,
        all_regions=data.all_regions,
        legislature_level=data.legislature_level,
        requires_address=data.requires_address,
        opens_at=data.opens_at,
        closes_at=data.closes_at,
        created_by_id=actor.id,
        status=CampaignStatus.draft,
        regions=[] if data.all_regions else await _regions(session, data.region_codes),
        texts=[],
    )
    session.add(campaign)
    await _flush_unique(
        session, Conflict("The slug {slug!r} is taken.", field="slug", slug=data.slug)
    )
    await _audit(
        session,
        actor=actor,
        action="campaign.create",
        obj=campaign,
        after=_campaign_state(campaign),
    )
    return campaign


async def update_campaign(
    session: AsyncSession, *, campaign_id: int, data: CampaignIn, actor: StaffMember
) -> Campaign:
    """Change a campaign's description and targets (not its status)."""
    staff_service.require(actor, Role.editor)
    campaign = await get_campaign(session, campaign_id=campaign_id)
    if campaign.status == CampaignStatus.closed:
        raise Conflict("A closed campaign cannot be changed.")
    if data.slug != campaign.slug and await session.scalar(
        select(Campaign.id).where(Campaign.slug == data.slug)
    ):
        raise Conflict("The slug {slug!r} is taken.", field="slug", slug=data.slug)
    if campaign.requires_address and not data.requires_address:
        # Texts already vetted may use the address; they must stay renderable.
        for text in campaign.texts:
            for version in text.versions:
                if version.status in (VersionStatus.in_review, VersionStatus.approved):
                    try:
                        rendering.check_version(
                            version.subject, version.body, address_allowed=False
                        )
                    except InvalidInput:
                        raise Conflict(
                            "Version {number} of “{text}” uses citizen.address: "
                            "the campaign must keep requiring an address.",
                            field="requires_address",
                            number=version.number,
                            text=text.name,
                        ) from None
    before = _campaign_state(campaign)
    campaign.slug = data.slug
    campaign.title = data.title
    campaign.description = data.description
    campaign.all_regions = data.all_regions
    campaign.legislature_level = data.legislature_level
    campaign.requires_address = data.requires_address
    campaign.opens_at = data.opens_at
    campaign.closes_at = data.closes_at
    campaign.regions = [] if data.all_regions else await _regions(session, data.region_codes)
    await _flush_unique(
        session, Conflict("The slug {slug!r} is taken.", field="slug", slug=data.slug)
    )
    after = _campaign_state(campaign)
    if after != before:
        await _audit(
            session,
            actor=actor,
            action="campaign.update",
            obj=campaign,
            before=before,
            after=after,
        )
    return campaign


async def approved_versions(session: AsyncSession, *, campaign_id: int) -> list[AppealVersion]:
    """The campaign's currently approved versions (its variants), oldest first."""
    result = await session.scalars(
        select(AppealVersion)
        .where(
            AppealVersion.campaign_id == campaign_id,
            AppealVersion.status == VersionStatus.approved,
        )
        .order_by(AppealVersion.id)
    )
    return list(result)


async def set_campaign_status(
    session: AsyncSession, *, campaign_id: int, status: CampaignStatus, actor: StaffMember
) -> Campaign:
    """Publish, pause or close a campaign; publishing needs an approved version."""
    staff_service.require(actor, Role.editor, Role.admin)
    campaign = await get_campaign(session, campaign_id=campaign_id)
    before = _campaign_state(campaign)
    if status == CampaignStatus.published and not await approved_versions(
        session, campaign_id=campaign.id
    ):
        raise Conflict(
            "The campaign has no approved text: a lawyer must approve one before it is published.",
            field="status",
        )
    if (
        status == CampaignStatus.published
        and campaign.closes_at is not None
        and campaign.closes_at <= utcnow()
    ):
        raise Conflict("The campaign's closing date has passed: change it first.", field="status")
    was_paused = campaign.status == CampaignStatus.paused
    move_campaign(campaign, status)
    # Pausing stops the sending of letters already made; publishing again resumes it. Closing
    # only ends new submissions: the letters made go out (or stay paused, if they were).
    if status == CampaignStatus.paused:
        await delivery_service.pause_campaign(session, campaign_id=campaign.id, reason="paused")
    elif status == CampaignStatus.published and was_paused:
        await delivery_service.resume_campaign(session, campaign_id=campaign.id)
    await session.flush()
    await _audit(
        session,
        actor=actor,
        action=f"campaign.{status}",
        obj=campaign,
        before=before,
        after=_campaign_state(campaign),
    )
    return campaign


# --- texts and versions ------------------------------------------------------------------------


async def get_text(session: AsyncSession, *, text_id: int) -> AppealText:
    """One text with its campaign and versions; NotFound otherwise."""
    text = await session.scalar(
        select(AppealText)
        .where(AppealText.id == text_id)
        .options(selectinload(AppealText.versions), selectinload(AppealText.campaign))
        .execution_options(populate_existing=True)
    )
    if text is None:
        raise NotFound("No text with id {id}.", field="text_id", id=text_id)
    return text


async def get_version(session: AsyncSession, *, version_id: int) -> AppealVersion:
    """One version with its text and campaign; NotFound otherwise."""
    version = await session.scalar(
        select(AppealVersion)
        .where(AppealVersion.id == version_id)
        .options(selectinload(AppealVersion.text).selectinload(AppealText.campaign))
        .execution_options(populate_existing=True)
    )
    if version is None:
        raise NotFound("No version with id {id}.", field="version_id", id=version_id)
    return version


async def create_text(
    session: AsyncSession,
    *,
    campaign_id: int,
    name: str,
    subject: str,
    body: str,
    actor: StaffMember,
) -> AppealVersion:
    """A new text in a campaign with its first version, a draft."""
    staff_service.require(actor, Role.editor)
    campaign = await get_campaign(session, campaign_id=campaign_id)
    if campaign.status == CampaignStatus.closed:
        raise Conflict("A closed campaign takes no new texts.")
    rendering.check_version(subject, body, address_allowed=campaign.requires_address)
    text = AppealText(campaign_id=campaign.id, name=name.strip())
    session.add(text)
    await session.flush()
    await _audit(
        session,
        actor=actor,
        action="text.create",
        obj=text,
        after={"name": text.name, "campaign_id": campaign.id},
    )
    return await _add_version(
        session, text=text, campaign=campaign, subject=subject, body=body, number=1, actor=actor
    )


async def _add_version(
    session: AsyncSession,
    *,
    text: AppealText,
    campaign: Campaign,
    subject: str,
    body: str,
    number: int,
    actor: StaffMember,
) -> AppealVersion:
    version = AppealVersion(
        text_id=text.id,
        campaign_id=campaign.id,
        number=number,
        subject=subject,
        body=body,
        status=VersionStatus.draft,
        author_id=actor.id,
    )
    session.add(version)
    await _flush_unique(
        session, Conflict("Someone saved a version at the same moment: reload.", field="body")
    )
    await _audit(
        session,
        actor=actor,
        action="version.create",
        obj=version,
        after={"text_id": text.id, "number": number, "subject": subject, "body": body},
    )
    return version


async def save_version(
    session: AsyncSession, *, text_id: int, subject: str, body: str, actor: StaffMember
) -> AppealVersion:
    """Save a wording as a new draft version. Versions are never edited in place, so approved
    (and every other) wording stays exactly as it was vetted."""
    staff_service.require(actor, Role.editor)
    text = await get_text(session, text_id=text_id)
    campaign = text.campaign
    if campaign.status == CampaignStatus.closed:
        raise Conflict("A closed campaign takes no new versions.")
    rendering.check_version(subject, body, address_allowed=campaign.requires_address)
    latest = text.versions[-1] if text.versions else None
    if latest is not None and latest.subject == subject and latest.body == body:
        raise Conflict(
            "Nothing changed since version {number}.", field="body", number=latest.number
        )
    number = (latest.number if latest else 0) + 1
    return await _add_version(
        session,
        text=text,
        campaign=campaign,
        subject=subject,
        body=body,
        number=number,
        actor=actor,
    )


async def submit_version(
    session: AsyncSession, *, version_id: int, actor: StaffMember
) -> AppealVersion:
    """Send a draft to the lawyers' review queue."""
    staff_service.require(actor, Role.editor)
    version = await get_version(session, version_id=version_id)
    before = _version_state(version)
    move_version(version, VersionStatus.in_review)
    version.submitted_at = utcnow()
    await session.flush()
    await _audit(
        session,
        actor=actor,
        action="version.submit",
        obj=version,
        before=before,
        after=_version_state(version),
    )
    return version


def _four_eyes(version: AppealVersion, actor: StaffMember) -> None:
    staff_service.require(actor, Role.lawyer)
    if version.author_id == actor.id:
        raise Forbidden("You wrote this version: another lawyer must review it (four eyes).")


async def approve_version(
    session: AsyncSession, *, version_id: int, actor: StaffMember, comment: str = ""
) -> AppealVersion:
    """A lawyer approves a version under review. An older approved version of the same text is
    superseded: editing a text replaces its wording, separate texts are the variants."""
    version = await get_version(session, version_id=version_id)
    _four_eyes(version, actor)
    before = _version_state(version)
    move_version(version, VersionStatus.approved)
    version.reviewed_by_id = actor.id
    version.reviewed_at = utcnow()
    version.review_comment = comment.strip()
    older = await session.scalars(
        select(AppealVersion).where(
            AppealVersion.text_id == version.text_id,
            AppealVersion.status == VersionStatus.approved,
            AppealVersion.id != version.id,
        )
    )
    for old in older:
        old_before = _version_state(old)
        move_version(old, VersionStatus.superseded)
        await _audit(
            session,
            actor=actor,
            action="version.supersede",
            obj=old,
            before=old_before,
            after=_version_state(old),
        )
    await session.flush()
    await _audit(
        session,
        actor=actor,
        action="version.approve",
        obj=version,
        before=before,
        after=_version_state(version),
    )
    return version


async def reject_version(
    session: AsyncSession, *, version_id: int, actor: StaffMember, comment: str
) -> AppealVersion:
    """A lawyer rejects a version under review, saying why."""
    version = await get_version(session, version_id=version_id)
    _four_eyes(version, actor)
    if not comment.strip():
        raise InvalidInput("Say why the version is rejected.", field="comment")
    before = _version_state(version)
    move_version(version, VersionStatus.rejected)
    version.reviewed_by_id = actor.id
    version.reviewed_at = utcnow()
    version.review_comment = comment.strip()
    await session.flush()
    await _audit(
        session,
        actor=actor,
        action="version.reject",
        obj=version,
        before=before,
        after=_version_state(version),
    )
    return version


async def withdraw_approval(
    session: AsyncSession, *, version_id: int, actor: StaffMember, comment: str
) -> AppealVersion:
    """A lawyer takes an approval back: citizens can no longer get this version and no letter
    of it may be sent. A published campaign left without an approved version is paused."""
    staff_service.require(actor, Role.lawyer)
    if not comment.strip():
        raise InvalidInput("Say why the approval is withdrawn.", field="comment")
    version = await get_version(session, version_id=version_id)
    before = _version_state(version)
    move_version(version, VersionStatus.withdrawn)
    version.withdrawn_by_id = actor.id
    version.withdrawn_at = utcnow()
    version.withdrawal_comment = comment.strip()
    # In the same transaction: every letter of this version not yet in a worker's hands is held
    # until a lawyer releases or cancels it. A letter already being sent at this instant finishes.
    held = await letters_service.hold_version_letters(session, appeal_version_id=version.id)
    await session.flush()
    await _audit(
        session,
        actor=actor,
        action="version.withdraw",
        obj=version,
        before=before,
        after={
            "status": str(version.status),
            "comment": version.withdrawal_comment,
            "letters_held": held,
        },
    )
    campaign = version.text.campaign
    if campaign.status == CampaignStatus.published and not await approved_versions(
        session, campaign_id=campaign.id
    ):
        campaign_before = _campaign_state_light(campaign)
        move_campaign(campaign, CampaignStatus.paused)
        await delivery_service.pause_campaign(
            session, campaign_id=campaign.id, reason="no approved text"
        )
        await session.flush()
        await _audit(
            session,
            actor=actor,
            action="campaign.paused",
            obj=campaign,
            before=campaign_before,
            after=_campaign_state_light(campaign),
        )
    return version


async def held_letters(session: AsyncSession, *, version_id: int) -> int:
    """How many letters of this version wait for a lawyer's decision."""
    return await letters_service.count_held(session, appeal_version_id=version_id)


async def decide_held_letters(
    session: AsyncSession, *, version_id: int, actor: StaffMember, release: bool
) -> int:
    """A lawyer releases the held letters of a withdrawn version (they go out as written) or
    cancels them (they never do); returns how many letters moved."""
    staff_service.require(actor, Role.lawyer)
    version = await get_version(session, version_id=version_id)
    if version.status != VersionStatus.withdrawn:
        raise Conflict("Only the letters of a withdrawn version are held.", field="version")
    if release:
        moved = await letters_service.release_version_letters(session, appeal_version_id=version.id)
    else:
        moved = await letters_service.cancel_version_letters(session, appeal_version_id=version.id)
    await _audit(
        session,
        actor=actor,
        action="version.letters_released" if release else "version.letters_cancelled",
        obj=version,
        before={"held": moved},
        after={"held": 0, "released" if release else "cancelled": moved},
    )
    return moved


def _campaign_state_light(campaign: Campaign) -> dict[str, Any]:
    return {"status": str(campaign.status)}


async def review_queue(session: AsyncSession) -> Sequence[AppealVersion]:
    """Versions waiting for a lawyer, oldest submission first, with text and campaign."""
    result = await session.scalars(
        select(AppealVersion)
        .where(AppealVersion.status == VersionStatus.in_review)
        .options(selectinload(AppealVersion.text).selectinload(AppealText.campaign))
        .order_by(AppealVersion.submitted_at, AppealVersion.id)
    )
    return result.all()


async def diff_versions(
    session: AsyncSession, *, text_id: int, from_number: int, to_number: int
) -> list[str]:
    """A unified diff between two versions of a text (subject first, then body)."""
    text = await get_text(session, text_id=text_id)
    by_number = {v.number: v for v in text.versions}
    for field, number in (("from", from_number), ("to", to_number)):
        if number not in by_number:
            raise NotFound(
                "Text {id} has no version {number}.", field=field, id=text_id, number=number
            )
    old, new = by_number[from_number], by_number[to_number]

    def lines(version: AppealVersion) -> list[str]:
        return [f"Тема: {version.subject}", "", *version.body.splitlines()]

    return list(
        difflib.unified_diff(
            lines(old), lines(new), f"версия {old.number}", f"версия {new.number}", lineterm=""
        )
    )


# --- letters: variants and rendering -----------------------------------------------------------


async def choose_version(
    session: AsyncSession, *, campaign_id: int, deputy_id: int
) -> AppealVersion:
    """The approved version the next letter to this deputy in this campaign uses.

    Variants come in turn per deputy (a counter per campaign and deputy), so that a deputy gets
    them alternately rather than many byte-identical letters. Conflict if none is approved. With
    a single approved text there is nothing to hand in turn, and the counter stays as it is
    (letters.bulk does the same for a confirmation's letters).
    """
    versions = await approved_versions(session, campaign_id=campaign_id)
    if not versions:
        raise Conflict("This campaign has no approved text at the moment.", field="campaign_id")
    if len(versions) == 1:
        return versions[0]
    values = {"campaign_id": campaign_id, "deputy_id": deputy_id, "counter": 1}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # One atomic statement: concurrent letters to the same deputy each get their own number.
    statement = (
        insert(VersionRotation)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["campaign_id", "deputy_id"],
            set_={"counter": VersionRotation.counter + 1},
        )
        .returning(VersionRotation.counter)
    )
    counter: int = (await session.execute(statement)).scalar_one()
    return versions[(counter - 1) % len(versions)]


def render_letter(
    version: AppealVersion,
    *,
    deputy: Deputy,
    citizen: Mapping[str, str],
    date: dt.date,
) -> tuple[str, str]:
    """A letter's (subject, body) from a version, for a deputy (legislature and region loaded)
    and a citizen (full_name, locality and, in campaigns that need it, address)."""
    return rendering.render(
        version.subject,
        version.body,
        deputy=rendering.deputy_values(deputy),
        citizen=dict(citizen),
        date=date,
        # The campaign's rule was enforced when the version was saved.
        address_allowed=True,
    )


async def version_is_sendable(session: AsyncSession, *, version_id: int) -> bool:
    """Whether letters of this version may be sent now (the send loop asks before each one)."""
    status = await session.scalar(
        select(AppealVersion.status).where(AppealVersion.id == version_id)
    )
    return status is not None and VersionStatus(status) in SENDABLE_VERSION_STATUSES


async def preview(
    session: AsyncSession, *, version_id: int, deputy_id: int, date: dt.date | None = None
) -> tuple[AppealVersion, Deputy, str, str]:
    """A version rendered for a real deputy with sample citizen data."""
    version = await get_version(session, version_id=version_id)
    deputy = await deputies_service.get_deputy(session, deputy_id=deputy_id)
    citizen = dict(rendering.SAMPLE_CITIZEN)
    if not version.text.campaign.requires_address:
        citizen.pop("address")
    subject, body = render_letter(
        version, deputy=deputy, citizen=citizen, date=date or utcnow().date()
    )
    return version, deputy, subject, body


async def count_versions_by_status(session: AsyncSession) -> dict[str, int]:
    """How many versions are in each status (for the staff home page)."""
    rows = await session.execute(
        select(AppealVersion.status, func.count(AppealVersion.id)).group_by(AppealVersion.status)
    )
    return {str(status): count for status, count in rows.all()}
