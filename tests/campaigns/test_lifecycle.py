"""Campaign states at the service level: what publishing needs, and closing for good."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import lifecycle
from app.campaigns.models import CampaignStatus, VersionStatus
from app.db import utcnow
from app.errors import Conflict
from app.staff.models import Role
from tests.factories import create_campaign, create_staff, create_version


async def test_publish_needs_an_approved_version(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    await create_version(session, campaign=campaign, author=editor, status=VersionStatus.in_review)
    with pytest.raises(Conflict, match="no approved text"):
        await lifecycle.set_campaign_status(
            session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
        )
    await create_version(session, campaign=campaign, author=editor, status=VersionStatus.approved)
    campaign.closes_at = utcnow() - dt.timedelta(minutes=1)
    with pytest.raises(Conflict, match="closing date has passed"):
        await lifecycle.set_campaign_status(
            session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
        )
    campaign.closes_at = utcnow() + dt.timedelta(days=30)
    published = await lifecycle.set_campaign_status(
        session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
    )
    assert published.status == CampaignStatus.published
    await lifecycle.set_campaign_status(
        session, campaign_id=campaign.id, status=CampaignStatus.closed, actor=editor
    )
    with pytest.raises(Conflict):
        await lifecycle.set_campaign_status(
            session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
        )
