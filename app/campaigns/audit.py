"""How a staff change to a campaign, text or version is recorded: its audit entry (with the
before and after states), the generation counter the citizen flow's snapshots watch, and the
flush that turns a concurrent unique hit into a Conflict."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import AppealText, AppealVersion, Campaign
from app.errors import Conflict
from app.staff import service as staff_service
from app.staff.models import StaffMember

# Bumped by every staff action on a campaign, text or version: the citizen flow's per-process
# snapshots (app.letters.cache) start afresh when it changes.
_generation = 0


def generation() -> int:
    """How many staff actions on campaigns, texts and versions this process has recorded."""
    return _generation


async def record(
    session: AsyncSession,
    *,
    actor: StaffMember,
    action: str,
    obj: Campaign | AppealText | AppealVersion,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a staff action on a campaign, text or version; the action names its object type."""
    global _generation
    _generation += 1
    await staff_service.record(
        session,
        actor=actor,
        action=action,
        object_type=action.split(".", 1)[0],
        object_id=obj.id,
        before=before,
        after=after,
    )


async def flush_unique(session: AsyncSession, conflict: Conflict) -> None:
    """Flush; a unique constraint hit by a concurrent request is this Conflict, not a 500."""
    try:
        await session.flush()
    except IntegrityError:
        raise conflict from None


def campaign_state(campaign: Campaign) -> dict[str, Any]:
    """A campaign's fields as the audit log keeps them."""
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


def campaign_status_state(campaign: Campaign) -> dict[str, Any]:
    """Only a campaign's status, for a change of status that follows from a vetting decision."""
    return {"status": str(campaign.status)}


def version_state(version: AppealVersion) -> dict[str, Any]:
    """A version's review state as the audit log keeps it."""
    return {"status": str(version.status), "comment": version.review_comment}
