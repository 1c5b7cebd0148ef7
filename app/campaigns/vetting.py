"""The lawyers' vetting of versions: the review queue, approval and rejection (never by the
version's author: four eyes), the withdrawal of an approval, and the decision on the letters a
withdrawal holds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import audit, hooks
from app.campaigns.lifecycle import approved_versions
from app.campaigns.models import AppealText, AppealVersion, CampaignStatus, VersionStatus
from app.campaigns.states import move_campaign, move_version
from app.campaigns.texts import get_version
from app.db import utcnow
from app.errors import Conflict, Forbidden, InvalidInput
from app.staff import service as staff_service
from app.staff.models import Role, StaffMember


async def submit_version(
    session: AsyncSession, *, version_id: int, actor: StaffMember
) -> AppealVersion:
    """Send a draft to the lawyers' review queue."""
    staff_service.require(actor, Role.editor)
    version = await get_version(session, version_id=version_id)
    before = audit.version_state(version)
    move_version(version, VersionStatus.in_review)
    version.submitted_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="version.submit",
        obj=version,
        before=before,
        after=audit.version_state(version),
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
    before = audit.version_state(version)
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
        old_before = audit.version_state(old)
        move_version(old, VersionStatus.superseded)
        await audit.record(
            session,
            actor=actor,
            action="version.supersede",
            obj=old,
            before=old_before,
            after=audit.version_state(old),
        )
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="version.approve",
        obj=version,
        before=before,
        after=audit.version_state(version),
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
    before = audit.version_state(version)
    move_version(version, VersionStatus.rejected)
    version.reviewed_by_id = actor.id
    version.reviewed_at = utcnow()
    version.review_comment = comment.strip()
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="version.reject",
        obj=version,
        before=before,
        after=audit.version_state(version),
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
    before = audit.version_state(version)
    move_version(version, VersionStatus.withdrawn)
    version.withdrawn_by_id = actor.id
    version.withdrawn_at = utcnow()
    version.withdrawal_comment = comment.strip()
    # In the same transaction: every letter of this version not yet in a worker's hands is held
    # until a lawyer releases or cancels it. A letter already being sent at this instant finishes.
    held = await hooks.letters.get().hold_version_letters(session, appeal_version_id=version.id)
    await session.flush()
    await audit.record(
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
        campaign_before = audit.campaign_status_state(campaign)
        move_campaign(campaign, CampaignStatus.paused)
        await hooks.delivery.get().pause_campaign(
            session, campaign_id=campaign.id, reason="no approved text"
        )
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="campaign.paused",
            obj=campaign,
            before=campaign_before,
            after=audit.campaign_status_state(campaign),
        )
    return version


async def held_letters(session: AsyncSession, *, version_id: int) -> int:
    """How many letters of this version wait for a lawyer's decision."""
    return await hooks.letters.get().count_held(session, appeal_version_id=version_id)


async def decide_held_letters(
    session: AsyncSession, *, version_id: int, actor: StaffMember, release: bool
) -> int:
    """A lawyer releases the held letters of a withdrawn version (they go out as written) or
    cancels them (they never do); returns how many letters moved."""
    staff_service.require(actor, Role.lawyer)
    version = await get_version(session, version_id=version_id)
    if version.status != VersionStatus.withdrawn:
        raise Conflict("Only the letters of a withdrawn version are held.", field="version")
    letters = hooks.letters.get()
    if release:
        moved = await letters.release_version_letters(session, appeal_version_id=version.id)
    else:
        moved = await letters.cancel_version_letters(session, appeal_version_id=version.id)
    await audit.record(
        session,
        actor=actor,
        action="version.letters_released" if release else "version.letters_cancelled",
        obj=version,
        before={"held": moved},
        after={"held": 0, "released" if release else "cancelled": moved},
    )
    return moved


async def review_queue(session: AsyncSession) -> Sequence[AppealVersion]:
    """Versions waiting for a lawyer, oldest submission first, with text and campaign."""
    result = await session.scalars(
        select(AppealVersion)
        .where(AppealVersion.status == VersionStatus.in_review)
        .options(selectinload(AppealVersion.text).selectinload(AppealText.campaign))
        .order_by(AppealVersion.submitted_at, AppealVersion.id)
    )
    return result.all()


async def count_versions_by_status(session: AsyncSession) -> dict[str, int]:
    """How many versions are in each status (for the staff home page)."""
    rows = await session.execute(
        select(AppealVersion.status, func.count(AppealVersion.id)).group_by(AppealVersion.status)
    )
    return {str(status): count for status, count in rows.all()}
