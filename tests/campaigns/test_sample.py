"""The sample campaign goes through the real workflow, once, and never in production."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service
from app.campaigns.models import CampaignStatus
from app.campaigns.sample import create_sample_campaign
from app.config import Settings
from app.errors import Forbidden
from app.staff.models import AuditEntry
from tests.factories import create_deputy


async def test_sample_is_published_with_an_approved_text(
    session: AsyncSession, settings: Settings
) -> None:
    campaign = await create_sample_campaign(session, settings=settings)
    await session.commit()
    assert campaign is not None
    assert campaign.status == CampaignStatus.published
    # Where its letters go depends on the relay: the description must say so, not promise the sink.
    assert "APPEALS_SMTP_HOST" in campaign.description
    [version] = await service.approved_versions(session, campaign_id=campaign.id)
    assert version.reviewed_by_id != version.author_id  # four eyes, as for any text
    deputy = await create_deputy(session)
    _, _, subject, body = await service.preview(session, version_id=version.id, deputy_id=deputy.id)
    assert subject
    assert "Уважаемый Пётр Сергеевич!" in body
    assert await create_sample_campaign(session, settings=settings) is None
    actions = set(await session.scalars(select(AuditEntry.action)))
    assert {"version.approve", "campaign.published"} <= actions


async def test_sample_is_refused_in_production(session: AsyncSession, settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production"})
    with pytest.raises(Forbidden):
        await create_sample_campaign(session, settings=production)
