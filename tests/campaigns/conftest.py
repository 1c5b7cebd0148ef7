"""Campaign test fixtures: a small registry and one staff member per role."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.deputies.models import Deputy
from app.staff.models import Role, StaffMember
from tests.factories import create_api_token, create_deputy, create_legislature, create_region


@dataclass
class Member:
    staff: StaffMember
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def email(self) -> str:
        return self.staff.email


@dataclass
class Team:
    admin: Member
    editor: Member
    lawyer: Member
    lawyer2: Member
    analyst: Member
    deputy: Deputy


@pytest.fixture
async def team(session: AsyncSession) -> Team:
    from tests.factories import create_staff

    async def member(*roles: Role, email: str) -> Member:
        staff = await create_staff(session, *roles, email=email)
        return Member(staff, await create_api_token(session, staff))

    region = await create_region(session, code="RU-TVE", name_ru="Тверская область")
    legislature = await create_legislature(
        session, region=region, name_ru="Законодательное собрание Тверской области"
    )
    deputy = await create_deputy(
        session,
        legislature=legislature,
        surname="Петров",
        first_name="Иван",
        patronymic="Сергеевич",
    )
    team = Team(
        admin=await member(Role.admin, email="admin@campaign.example.org"),
        editor=await member(Role.editor, email="editor@campaign.example.org"),
        lawyer=await member(Role.lawyer, Role.editor, email="lawyer@campaign.example.org"),
        lawyer2=await member(Role.lawyer, email="lawyer2@campaign.example.org"),
        analyst=await member(Role.analyst, email="analyst@campaign.example.org"),
        deputy=deputy,
    )
    await session.commit()
    return team
