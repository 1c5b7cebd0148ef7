"""Vetting decisions reach the outbox: withdrawal holds letters, lawyers release or cancel them,
and pausing a campaign pauses its delivery."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service
from app.campaigns.models import CampaignStatus, VersionStatus
from app.config import Settings
from app.delivery.models import PauseKind, SendPause
from app.errors import Conflict, Forbidden
from app.letters.models import Letter, LetterStatus
from app.staff.models import AuditEntry, Role
from tests.factories import (
    create_api_token,
    create_campaign,
    create_letter,
    create_staff,
    create_version,
)


async def _statuses(session: AsyncSession) -> list[str]:
    session.expire_all()
    return [str(s) for s in await session.scalars(select(Letter.status).order_by(Letter.id))]


async def _published_with_letters(session: AsyncSession, settings: Settings) -> tuple[int, int]:
    """A published campaign with three letters of its approved version, the third being sent."""
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor, status=CampaignStatus.published)
    version = await create_version(
        session, campaign=campaign, author=editor, status=VersionStatus.approved
    )
    for _ in range(3):
        await create_letter(
            session, settings=settings, campaign_id=campaign.id, appeal_version_id=version.id
        )
    letters = (await session.scalars(select(Letter).order_by(Letter.id))).all()
    letters[2].status = LetterStatus.sending  # in a worker's hands right now
    await session.commit()
    return campaign.id, version.id


async def test_withdrawal_holds_unsent_letters_and_pauses_delivery(
    session: AsyncSession, settings: Settings
) -> None:
    campaign_id, version_id = await _published_with_letters(session, settings)
    lawyer = await create_staff(session, Role.lawyer)
    await service.withdraw_approval(session, version_id=version_id, actor=lawyer, comment="риск")
    await session.commit()
    assert await _statuses(session) == ["held", "held", "sending"]
    assert await service.held_letters(session, version_id=version_id) == 2
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "version.withdraw"))
    assert entry is not None
    assert entry.after is not None
    assert entry.after["letters_held"] == 2
    # No approved text is left: the campaign pauses, and so does its delivery.
    pause = await session.scalar(select(SendPause).where(SendPause.kind == PauseKind.campaign))
    assert pause is not None
    assert pause.key == str(campaign_id)


@pytest.mark.parametrize(("release", "expected"), [(True, "queued"), (False, "cancelled")])
async def test_a_lawyer_releases_or_cancels_held_letters(
    session: AsyncSession, settings: Settings, release: bool, expected: str
) -> None:
    _, version_id = await _published_with_letters(session, settings)
    lawyer = await create_staff(session, Role.lawyer)
    await service.withdraw_approval(session, version_id=version_id, actor=lawyer, comment="риск")
    editor = await create_staff(session, Role.editor)
    with pytest.raises(Forbidden):
        await service.decide_held_letters(
            session, version_id=version_id, actor=editor, release=release
        )
    moved = await service.decide_held_letters(
        session, version_id=version_id, actor=lawyer, release=release
    )
    await session.commit()
    assert moved == 2
    assert await _statuses(session) == [expected, expected, "sending"]


async def test_held_letters_of_an_approved_version_cannot_be_decided(
    session: AsyncSession, settings: Settings
) -> None:
    _, version_id = await _published_with_letters(session, settings)
    lawyer = await create_staff(session, Role.lawyer)
    with pytest.raises(Conflict):
        await service.decide_held_letters(
            session, version_id=version_id, actor=lawyer, release=True
        )


async def test_pause_and_publish_again_pause_and_resume_delivery(
    session: AsyncSession, settings: Settings
) -> None:
    campaign_id, _ = await _published_with_letters(session, settings)
    editor = await create_staff(session, Role.editor)
    pauses = select(SendPause).where(SendPause.key == str(campaign_id))
    await service.set_campaign_status(
        session, campaign_id=campaign_id, status=CampaignStatus.paused, actor=editor
    )
    await session.commit()
    assert (await session.scalars(pauses)).all()
    await service.set_campaign_status(
        session, campaign_id=campaign_id, status=CampaignStatus.published, actor=editor
    )
    await session.commit()
    assert not (await session.scalars(pauses)).all()


async def test_api_release_by_a_lawyer(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    _, version_id = await _published_with_letters(session, settings)
    lawyer = await create_staff(session, Role.lawyer)
    await service.withdraw_approval(session, version_id=version_id, actor=lawyer, comment="риск")
    token = await create_api_token(session, lawyer)
    await session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.post(
        f"/api/v1/staff/versions/{version_id}/held/release", headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"version_id": version_id, "decision": "release", "letters": 2}
    bad = await client.post(f"/api/v1/staff/versions/{version_id}/held/resend", headers=headers)
    assert bad.status_code == 422


async def test_a_withdrawal_over_http_holds_letters_and_stops_their_delivery(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    # The whole path through the real app: the route, vetting, and the hooks that letters and
    # delivery registered (app.campaigns.hooks, app.letters.hooks).
    campaign_id, version_id = await _published_with_letters(session, settings)
    lawyer = await create_staff(session, Role.lawyer)
    token = await create_api_token(session, lawyer)
    await session.commit()
    response = await client.post(
        f"/api/v1/staff/versions/{version_id}/withdraw",
        json={"comment": "риск"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert await _statuses(session) == ["held", "held", "sending"]
    pauses = {(p.kind, p.key) for p in await session.scalars(select(SendPause))}
    # The letter on the wire becomes held when its worker records it (version_hold); the
    # campaign, left without an approved text, stops sending (campaign).
    assert pauses == {
        (PauseKind.version_hold, str(version_id)),
        (PauseKind.campaign, str(campaign_id)),
    }
