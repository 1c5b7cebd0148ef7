"""Async factories for test data; each flushes, the test commits when it needs to."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deputies.models import Deputy, Legislature, LegislatureLevel, Region
from app.letters import service as letters_service
from app.letters.models import Letter

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


def message_of(letter: Letter) -> bytes:
    """The message bytes of a letter made in this session (its body is in the identity map)."""
    assert letter.body is not None
    return letter.body.message
