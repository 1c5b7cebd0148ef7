"""Campaigns open for letters, as the citizen sees them before submitting: the list, one by
slug, its text with placeholders for names, the regions and deputies it writes to, and the
letters' preview.

Services read only; nothing here imports FastAPI.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BindParameter, ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import rendering
from app.campaigns import service as campaigns_service
from app.campaigns.models import AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.db import utcnow
from app.deputies import service as deputies_service
from app.deputies.models import Deputy, Legislature, Region
from app.errors import Gone, NotFound
from app.i18n import gettext as _
from app.letters.flow import citizen_values
from app.letters.schemas import SenderIn


def open_clause(now: dt.datetime | BindParameter[dt.datetime]) -> list[ColumnElement[bool]]:
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
        .where(*open_clause(utcnow()))
        .options(selectinload(Campaign.regions))
        .order_by(Campaign.id.desc())
    )
    return list(result)


async def get_open_campaign(session: AsyncSession, *, slug: str) -> Campaign:
    """An open campaign by slug (its regions loaded when it targets some); NotFound if there is
    none, Gone if it is not open now."""
    campaign: Campaign | None = await session.scalar(
        select(Campaign).where(Campaign.slug == slug, *open_clause(utcnow()))
    )
    if campaign is None:
        status = await session.scalar(select(Campaign.status).where(Campaign.slug == slug))
        if status is None or status == CampaignStatus.draft:
            raise NotFound(_("There is no such campaign."), field="slug")
        raise Gone(_("This campaign is not accepting letters at the moment."), field="slug")
    if not campaign.all_regions:
        await session.refresh(campaign, ["regions"])
    return campaign


async def campaign_slug(session: AsyncSession, campaign_id: int) -> str:
    slug = await session.scalar(select(Campaign.slug).where(Campaign.id == campaign_id))
    if slug is None:
        raise NotFound(_("There is no such campaign."), field="slug")
    return slug


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
