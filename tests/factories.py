"""Async factories for test data; each flushes, the test commits when it needs to."""

from __future__ import annotations

import itertools
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import AppealText, AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.config import Settings
from app.deputies.models import Deputy, Legislature, LegislatureLevel, Region
from app.letters import service as letters_service
from app.letters.models import Letter, LetterMessage
from app.staff import service as staff_service
from app.staff.models import Role, StaffMember

_sequence = itertools.count(1)


async def create_region(session: AsyncSession, **values: Any) -> Region:
    n = next(_sequence)
    region = Region(
        code=values.pop("code", f"RU-T{n % 100:02d}"[:6]),
        name_ru=values.pop("name_ru", f"Тестовая область {n}"),
        name_en=values.pop("name_en", f"Test Oblast {n}"),
        **values,
    )
    session.add(region)
    await session.flush()
    return region


async def create_legislature(
    session: AsyncSession, *, region: Region | None = None, **values: Any
) -> Legislature:
    region = region or await create_region(session)
    n = next(_sequence)
    legislature = Legislature(
        region_id=region.id,
        code=values.pop("code", f"{region.code}-LEG{n}"),
        level=values.pop("level", LegislatureLevel.regional),
        name_ru=values.pop("name_ru", f"Законодательное собрание {n}"),
        name_en=values.pop("name_en", f"Legislative Assembly {n}"),
        **values,
    )
    session.add(legislature)
    await session.flush()
    return legislature


async def create_deputy(
    session: AsyncSession, *, legislature: Legislature | None = None, **values: Any
) -> Deputy:
    legislature = legislature or await create_legislature(session)
    n = next(_sequence)
    deputy = Deputy(
        legislature_id=legislature.id,
        external_id=values.pop("external_id", f"T-{n:06d}"),
        surname=values.pop("surname", "Иванов"),
        first_name=values.pop("first_name", "Пётр"),
        patronymic=values.pop("patronymic", "Сергеевич"),
        position=values.pop("position", "Депутат"),
        email=values.pop("email", f"deputy{n}@region.example.org"),
        **values,
    )
    session.add(deputy)
    await session.flush()
    return deputy


# --- staff and campaigns -----------------------------------------------------------------------

STAFF_PASSWORD = "correct-horse-battery-staple"
# Argon2 at the lowest cost: the factories must not slow the suite down.
_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def create_staff(
    session: AsyncSession,
    *roles: Role,
    email: str | None = None,
    password: str = STAFF_PASSWORD,
    **values: Any,
) -> StaffMember:
    n = next(_sequence)
    staff = StaffMember(
        email=email or f"staff{n}@campaign.example.org",
        name=values.pop("name", f"Сотрудник {n}"),
        password_hash=_cheap_hasher.hash(password),
        **values,
    )
    staff.roles = set(roles or (Role.editor,))
    session.add(staff)
    await session.flush()
    return staff


async def create_api_token(session: AsyncSession, staff: StaffMember) -> str:
    _, raw = await staff_service.create_api_token(session, staff=staff, name="test")
    return raw


async def create_campaign(
    session: AsyncSession, *, author: StaffMember | None = None, **values: Any
) -> Campaign:
    n = next(_sequence)
    campaign = Campaign(
        slug=values.pop("slug", f"campaign-{n}"),
        title=values.pop("title", f"Кампания {n}"),
        description=values.pop("description", "Описание для граждан."),
        status=values.pop("status", CampaignStatus.draft),
        created_by_id=author.id if author else None,
        **values,
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def create_version(
    session: AsyncSession,
    *,
    campaign: Campaign,
    author: StaffMember,
    status: VersionStatus = VersionStatus.draft,
    subject: str = "Обращение: {{ deputy.surname }}",
    body: str = "{{ deputy.salutation }}!\n\nПрошу рассмотреть.\n\n{{ citizen.full_name }}",
    text: AppealText | None = None,
    **values: Any,
) -> AppealVersion:
    """A version of `text` (a new text if none), in any status, without going through review."""
    if text is None:
        text = AppealText(campaign_id=campaign.id, name=values.pop("name", "Основной текст"))
        session.add(text)
        await session.flush()
    number = values.pop("number", None)
    if number is None:
        number = 1 + (
            await session.scalar(
                select(func.count(AppealVersion.id)).where(AppealVersion.text_id == text.id)
            )
            or 0
        )
    version = AppealVersion(
        text_id=text.id,
        campaign_id=campaign.id,
        number=number,
        subject=subject,
        body=body,
        status=status,
        author_id=author.id,
        **values,
    )
    session.add(version)
    await session.flush()
    return version


async def create_letter(
    session: AsyncSession,
    *,
    settings: Settings,
    deputy: Deputy | None = None,
    **values: Any,
) -> Letter:
    """A queued letter through the real service (message bytes built as in production)."""
    deputy = deputy or await create_deputy(session)
    return await letters_service.create_letter(
        session,
        deputy=deputy,
        campaign_id=values.pop("campaign_id", 1),
        campaign_title=values.pop("campaign_title", "Сохраним больницу"),
        appeal_version_id=values.pop("appeal_version_id", 1),
        sender_name=values.pop("sender_name", "Мария Петрова"),
        sender_email=values.pop("sender_email", "maria@example.com"),
        reply_to=values.pop("reply_to", True),
        subject=values.pop("subject", "Обращение"),
        body=values.pop("body", "Уважаемый депутат!\n\nПрошу сохранить больницу.\n"),
        settings=settings,
        **values,
    )


async def stored_message(session: AsyncSession, letter_id: int) -> bytes | None:
    """A letter's message bytes as stored (None once erased or purged)."""
    return await session.scalar(
        select(LetterMessage.message).where(LetterMessage.letter_id == letter_id)
    )


def message_of(letter: Letter) -> bytes:
    """The message bytes of a letter made in this session (its body is in the identity map)."""
    assert letter.body is not None
    return letter.body.message
