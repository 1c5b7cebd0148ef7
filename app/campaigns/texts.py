"""Appeal texts and their versions, as editors write them: a text is a variant of the letter,
each saved wording a new version (never edited in place), and the diff between two of them."""

from __future__ import annotations

import difflib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import audit, rendering
from app.campaigns.lifecycle import get_campaign
from app.campaigns.models import AppealText, AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.errors import Conflict, NotFound
from app.staff import service as staff_service
from app.staff.models import Role, StaffMember


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
    await audit.record(
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
    await audit.flush_unique(
        session, Conflict("Someone saved a version at the same moment: reload.", field="body")
    )
    await audit.record(
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
