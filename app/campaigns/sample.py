"""A sample campaign for a newcomer's first run: written, vetted and published through the real
workflow by two sample staff members who cannot log in (their passwords are random and thrown
away). Refused in production."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import lifecycle, texts, vetting
from app.campaigns.models import Campaign, CampaignStatus
from app.campaigns.schemas import CampaignIn
from app.config import Settings
from app.errors import Forbidden
from app.staff import service as staff_service
from app.staff.models import Role, StaffMember

SLUG = "sample-hospitals"
SUBJECT = "Обращение о сохранении районных больниц"
BODY = """{{ deputy.salutation }}!

Я живу в населённом пункте {{ citizen.locality }} и прошу Вас как депутата \
({{ deputy.position }}, {{ deputy.legislature }}) поддержать сохранение районных больниц \
в регионе {{ deputy.region }}: закрытие отделений лишает жителей помощи рядом с домом.

Прошу сообщить, какие меры Вы готовы предпринять.

С уважением,
{{ citizen.full_name }}
{{ date }}
"""


async def _member(
    session: AsyncSession, *, email: str, role: Role, name: str, settings: Settings
) -> StaffMember:
    existing = await session.scalar(select(StaffMember).where(StaffMember.email == email))
    if existing is not None:
        return existing
    return await staff_service.create_staff(
        session,
        email=email,
        password=secrets.token_urlsafe(32),  # never shown: nobody logs in as a sample member
        roles={role},
        name=name,
        settings=settings,
        actor=None,
    )


async def create_sample_campaign(session: AsyncSession, *, settings: Settings) -> Campaign | None:
    """Create and publish the sample campaign; None if it exists already. The caller commits."""
    if settings.environment == "production":
        raise Forbidden("The sample campaign is for trying the platform, not for production.")
    if await session.scalar(select(Campaign).where(Campaign.slug == SLUG)) is not None:
        return None
    editor = await _member(
        session, email="sample-editor@appeals.example.org", role=Role.editor,
        name="Редактор (пример)", settings=settings,
    )  # fmt: skip
    lawyer = await _member(
        session, email="sample-lawyer@appeals.example.org", role=Role.lawyer,
        name="Юрист (пример)", settings=settings,
    )  # fmt: skip
    campaign = await lifecycle.create_campaign(
        session,
        data=CampaignIn(
            slug=SLUG,
            title="Сохраним районные больницы",
            description=(
                "Пример кампании: письмо региональным депутатам о сохранении районных больниц. "
                "Пока не настроен почтовый сервер для отправки (APPEALS_SMTP_HOST), письма "
                "уходят в локальный приёмник, а не депутатам; с ним — по адресам из реестра."
            ),
        ),
        actor=editor,
    )
    version = await texts.create_text(
        session, campaign_id=campaign.id, name="Основной текст", subject=SUBJECT, body=BODY,
        actor=editor,
    )  # fmt: skip
    await vetting.submit_version(session, version_id=version.id, actor=editor)
    await vetting.approve_version(session, version_id=version.id, actor=lawyer)
    return await lifecycle.set_campaign_status(
        session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
    )
