"""What a letter takes from its campaign: the variants in turn per deputy, and the rendering
for a real deputy."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import variants
from app.campaigns.models import VersionStatus
from app.deputies.models import Gender
from app.staff.models import Role
from tests.factories import create_campaign, create_deputy, create_staff, create_version


async def test_each_deputy_gets_the_variants_in_turn(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    approved = [
        await create_version(
            session, campaign=campaign, author=editor, status=VersionStatus.approved, name=f"T{n}"
        )
        for n in range(3)
    ]
    await create_version(session, campaign=campaign, author=editor, status=VersionStatus.draft)
    first, second = await create_deputy(session), await create_deputy(session)
    picks = [
        (await variants.choose_version(session, campaign_id=campaign.id, deputy_id=d.id)).id
        for d in (first, first, second, first, first, second)
    ]
    ids = [v.id for v in approved]
    assert picks == [ids[0], ids[1], ids[0], ids[2], ids[0], ids[1]]
    await session.commit()


async def test_render_letter_for_a_real_deputy(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor, requires_address=True)
    version = await create_version(
        session,
        campaign=campaign,
        author=editor,
        subject="Обращение: {{ deputy.full_name }}",
        body="{{ deputy.salutation }}!\n{{ deputy.legislature }}, {{ deputy.region }}.\n"
        "{{ citizen.full_name }}, {{ citizen.address }}. {{ date }}",
    )
    made = await create_deputy(
        session, surname="Смирнова", first_name="Анна", patronymic="Олеговна", gender=None
    )
    from app.deputies import service as deputies_service

    deputy = await deputies_service.get_deputy(session, deputy_id=made.id)
    assert deputy.inferred_gender == Gender.female
    subject, body = variants.render_letter(
        version,
        deputy=deputy,
        citizen={"full_name": "Иванов И. И.", "locality": "Тверь", "address": "ул. Мира, 1"},
        date=dt.date(2026, 3, 8),
    )
    assert subject == "Обращение: Смирнова Анна Олеговна"
    assert body.startswith("Уважаемая Анна Олеговна!\n")
    assert deputy.legislature.name_ru in body
    assert deputy.legislature.region.name_ru in body
    assert body.endswith("Иванов И. И., ул. Мира, 1. 8 марта 2026 г.")
