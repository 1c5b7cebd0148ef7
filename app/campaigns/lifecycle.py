"""Campaigns themselves: listing and reading them, creating and editing them, and their status
(publish, pause, close). Editors write; editors and admins change a campaign's status."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import audit, hooks, rendering
from app.campaigns.models import AppealText, AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.campaigns.schemas import CampaignIn
from app.campaigns.states import move_campaign
from app.db import utcnow
from app.deputies.models import Region
from app.errors import Conflict, InvalidInput, NotFound
from app.staff import service as staff_service
from app.staff.models import Role, StaffMember

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
    await audit.flush_unique(
        session, Conflict("The slug {slug!r} is taken.", field="slug", slug=data.slug)
    )
    await audit.record(
        session,
        actor=actor,
        action="campaign.create",
        obj=campaign,
        after=audit.campaign_state(campaign),
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
    before = audit.campaign_state(campaign)
    campaign.slug = data.slug
    campaign.title = data.title
    campaign.description = data.description
    campaign.all_regions = data.all_regions
    campaign.legislature_level = data.legislature_level
    campaign.requires_address = data.requires_address
    campaign.opens_at = data.opens_at
    campaign.closes_at = data.closes_at
    campaign.regions = [] if data.all_regions else await _regions(session, data.region_codes)
    await audit.flush_unique(
        session, Conflict("The slug {slug!r} is taken.", field="slug", slug=data.slug)
    )
    after = audit.campaign_state(campaign)
    if after != before:
        await audit.record(
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
    before = audit.campaign_state(campaign)
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
        await hooks.delivery.get().pause_campaign(session, campaign_id=campaign.id, reason="paused")
    elif status == CampaignStatus.published and was_paused:
        await hooks.delivery.get().resume_campaign(session, campaign_id=campaign.id)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action=f"campaign.{status}",
        obj=campaign,
        before=before,
        after=audit.campaign_state(campaign),
    )
    return campaign
