"""Campaign test fixtures: a small registry, one staff member per role, and a campaign with a
text made through the API."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
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


BODY = "{{ deputy.salutation }}!\n\nПрошу принять закон.\n\n{{ citizen.full_name }}, {{ date }}"


async def campaign_with_text(client: httpx.AsyncClient, team: Team) -> tuple[int, dict[str, int]]:
    """A campaign the editor makes over the API with one text: its id, the text and version ids."""
    made = await client.post(
        "/api/v1/staff/campaigns",
        json={"slug": "clean-water", "title": "Чистая вода", "description": "Описание"},
        headers=team.editor.headers,
    )
    assert made.status_code == 201, made.text
    campaign_id = made.json()["id"]
    text = await client.post(
        f"/api/v1/staff/campaigns/{campaign_id}/texts",
        json={"name": "Основной", "subject": "Вода: {{ deputy.surname }}", "body": BODY},
        headers=team.editor.headers,
    )
    assert text.status_code == 201, text.text
    body = text.json()
    return campaign_id, {"text": body["id"], "version": body["versions"][0]["id"]}
