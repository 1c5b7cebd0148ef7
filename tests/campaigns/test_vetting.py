"""The vetting workflow at the service level: four eyes, roles, the version state machine,
and what a withdrawal does to the campaign's variants."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import lifecycle, texts, variants, vetting
from app.campaigns.models import CampaignStatus, VersionStatus
from app.campaigns.schemas import CampaignIn
from app.errors import Conflict, Forbidden, InvalidInput
from app.staff.models import AuditEntry, Role
from tests.factories import create_campaign, create_deputy, create_staff, create_version


async def test_four_eyes_the_author_cannot_vet_their_own_version(session: AsyncSession) -> None:
    author = await create_staff(session, Role.editor, Role.lawyer)
    other = await create_staff(session, Role.lawyer)
    campaign = await create_campaign(session, author=author)
    version = await texts.create_text(
        session,
        campaign_id=campaign.id,
        name="Текст",
        subject="Тема",
        body="{{ deputy.salutation }}!",
        actor=author,
    )
    await vetting.submit_version(session, version_id=version.id, actor=author)
    with pytest.raises(Forbidden, match="four eyes"):
        await vetting.approve_version(session, version_id=version.id, actor=author)
    with pytest.raises(Forbidden, match="four eyes"):
        await vetting.reject_version(session, version_id=version.id, actor=author, comment="x")
    approved = await vetting.approve_version(session, version_id=version.id, actor=other)
    assert approved.status == VersionStatus.approved
    assert approved.reviewed_by_id == other.id


async def test_roles_are_enforced_by_the_service(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    analyst = await create_staff(session, Role.analyst)
    campaign = await create_campaign(session, author=editor)
    version = await create_version(
        session, campaign=campaign, author=editor, status=VersionStatus.in_review
    )
    with pytest.raises(Forbidden):
        await lifecycle.create_campaign(
            session, data=CampaignIn(slug="x", title="X"), actor=analyst
        )
    with pytest.raises(Forbidden):  # editors write, they do not approve
        await vetting.approve_version(session, version_id=version.id, actor=editor)
    with pytest.raises(Forbidden):
        await texts.save_version(
            session, text_id=version.text_id, subject="a", body="b", actor=analyst
        )


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (VersionStatus.draft, "approve"),
        (VersionStatus.approved, "submit"),
        (VersionStatus.rejected, "approve"),
        (VersionStatus.withdrawn, "approve"),
        (VersionStatus.in_review, "withdraw"),
    ],
)
async def test_version_state_machine_refuses_other_moves(
    session: AsyncSession, status: VersionStatus, action: str
) -> None:
    editor = await create_staff(session, Role.editor)
    lawyer = await create_staff(session, Role.lawyer, Role.editor)
    campaign = await create_campaign(session, author=editor)
    version = await create_version(session, campaign=campaign, author=editor, status=status)
    if action == "approve":
        with pytest.raises(Conflict):
            await vetting.approve_version(session, version_id=version.id, actor=lawyer)
    elif action == "submit":
        with pytest.raises(Conflict):
            await vetting.submit_version(session, version_id=version.id, actor=lawyer)
    else:
        with pytest.raises(Conflict):
            await vetting.withdraw_approval(
                session, version_id=version.id, actor=lawyer, comment="x"
            )


async def test_withdrawal_removes_the_variant_and_pauses_an_empty_campaign(
    session: AsyncSession,
) -> None:
    editor = await create_staff(session, Role.editor)
    lawyer = await create_staff(session, Role.lawyer)
    campaign = await create_campaign(session, author=editor, status=CampaignStatus.published)
    a = await create_version(
        session, campaign=campaign, author=editor, status=VersionStatus.approved
    )
    b = await create_version(
        session, campaign=campaign, author=editor, status=VersionStatus.approved, name="Вариант Б"
    )
    deputy = await create_deputy(session)
    with pytest.raises(InvalidInput):  # a reason is required
        await vetting.withdraw_approval(session, version_id=a.id, actor=lawyer, comment=" ")
    withdrawn = await vetting.withdraw_approval(
        session, version_id=a.id, actor=lawyer, comment="Формулировка рискованна"
    )
    assert withdrawn.id == a.id
    assert withdrawn.status == VersionStatus.withdrawn
    assert not await variants.version_is_sendable(session, version_id=a.id)
    assert await variants.version_is_sendable(session, version_id=b.id)
    for _ in range(3):
        chosen = await variants.choose_version(
            session, campaign_id=campaign.id, deputy_id=deputy.id
        )
        assert chosen.id == b.id
    campaign = await lifecycle.get_campaign(session, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.published
    await vetting.withdraw_approval(session, version_id=b.id, actor=lawyer, comment="Тоже")
    campaign = await lifecycle.get_campaign(session, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.paused
    with pytest.raises(Conflict, match="no approved text"):
        await variants.choose_version(session, campaign_id=campaign.id, deputy_id=deputy.id)
    actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert actions == ["version.withdraw", "version.withdraw", "campaign.paused"]
