"""The vetting workflow, campaign states and the variant rotation, at the service level."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.campaigns import service
from app.campaigns.models import AppealText, AppealVersion, CampaignStatus, VersionStatus
from app.campaigns.schemas import CampaignIn
from app.db import utcnow
from app.deputies.models import Gender
from app.errors import Conflict, Forbidden, InvalidInput
from app.staff.models import AuditEntry, Role
from tests.factories import create_campaign, create_deputy, create_staff, create_version


async def test_four_eyes_the_author_cannot_vet_their_own_version(session: AsyncSession) -> None:
    author = await create_staff(session, Role.editor, Role.lawyer)
    other = await create_staff(session, Role.lawyer)
    campaign = await create_campaign(session, author=author)
    version = await service.create_text(
        session,
        campaign_id=campaign.id,
        name="Текст",
        subject="Тема",
        body="{{ deputy.salutation }}!",
        actor=author,
    )
    await service.submit_version(session, version_id=version.id, actor=author)
    with pytest.raises(Forbidden, match="four eyes"):
        await service.approve_version(session, version_id=version.id, actor=author)
    with pytest.raises(Forbidden, match="four eyes"):
        await service.reject_version(session, version_id=version.id, actor=author, comment="x")
    approved = await service.approve_version(session, version_id=version.id, actor=other)
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
        await service.create_campaign(session, data=CampaignIn(slug="x", title="X"), actor=analyst)
    with pytest.raises(Forbidden):  # editors write, they do not approve
        await service.approve_version(session, version_id=version.id, actor=editor)
    with pytest.raises(Forbidden):
        await service.save_version(
            session, text_id=version.text_id, subject="a", body="b", actor=analyst
        )


async def test_approved_versions_are_immutable_edits_make_new_drafts(
    session: AsyncSession,
) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    v1 = await create_version(
        session, campaign=campaign, author=editor, status=VersionStatus.approved
    )
    original = (v1.subject, v1.body)
    v2 = await service.save_version(
        session, text_id=v1.text_id, subject="Новая тема", body="Новый текст", actor=editor
    )
    assert (v2.number, v2.status) == (2, VersionStatus.draft)
    await session.refresh(v1)
    assert (v1.subject, v1.body, v1.status) == (*original, VersionStatus.approved)
    # Saving the same wording twice is refused rather than duplicated.
    with pytest.raises(Conflict, match="Nothing changed"):
        await service.save_version(
            session, text_id=v1.text_id, subject="Новая тема", body="Новый текст", actor=editor
        )
    # Approving v2 supersedes v1 (the same text's older wording).
    lawyer = await create_staff(session, Role.lawyer)
    await service.submit_version(session, version_id=v2.id, actor=editor)
    await service.approve_version(session, version_id=v2.id, actor=lawyer)
    await session.refresh(v1)
    assert v1.status == VersionStatus.superseded
    assert [v.id for v in await service.approved_versions(session, campaign_id=campaign.id)] == [
        v2.id
    ]
    # Letters of a superseded wording may still be queued: its approval can be withdrawn too.
    await service.withdraw_approval(session, version_id=v1.id, actor=lawyer, comment="Риск")
    assert not await service.version_is_sendable(session, version_id=v1.id)
    assert await service.version_is_sendable(session, version_id=v2.id)


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
            await service.approve_version(session, version_id=version.id, actor=lawyer)
    elif action == "submit":
        with pytest.raises(Conflict):
            await service.submit_version(session, version_id=version.id, actor=lawyer)
    else:
        with pytest.raises(Conflict):
            await service.withdraw_approval(
                session, version_id=version.id, actor=lawyer, comment="x"
            )


async def test_publish_needs_an_approved_version(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    await create_version(session, campaign=campaign, author=editor, status=VersionStatus.in_review)
    with pytest.raises(Conflict, match="no approved text"):
        await service.set_campaign_status(
            session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
        )
    await create_version(session, campaign=campaign, author=editor, status=VersionStatus.approved)
    campaign.closes_at = utcnow() - dt.timedelta(minutes=1)
    with pytest.raises(Conflict, match="closing date has passed"):
        await service.set_campaign_status(
            session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
        )
    campaign.closes_at = utcnow() + dt.timedelta(days=30)
    published = await service.set_campaign_status(
        session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
    )
    assert published.status == CampaignStatus.published
    await service.set_campaign_status(
        session, campaign_id=campaign.id, status=CampaignStatus.closed, actor=editor
    )
    with pytest.raises(Conflict):
        await service.set_campaign_status(
            session, campaign_id=campaign.id, status=CampaignStatus.published, actor=editor
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
        await service.withdraw_approval(session, version_id=a.id, actor=lawyer, comment=" ")
    withdrawn = await service.withdraw_approval(
        session, version_id=a.id, actor=lawyer, comment="Формулировка рискованна"
    )
    assert withdrawn.id == a.id
    assert withdrawn.status == VersionStatus.withdrawn
    assert not await service.version_is_sendable(session, version_id=a.id)
    assert await service.version_is_sendable(session, version_id=b.id)
    for _ in range(3):
        chosen = await service.choose_version(session, campaign_id=campaign.id, deputy_id=deputy.id)
        assert chosen.id == b.id
    campaign = await service.get_campaign(session, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.published
    await service.withdraw_approval(session, version_id=b.id, actor=lawyer, comment="Тоже")
    campaign = await service.get_campaign(session, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.paused
    with pytest.raises(Conflict, match="no approved text"):
        await service.choose_version(session, campaign_id=campaign.id, deputy_id=deputy.id)
    actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert actions == ["version.withdraw", "version.withdraw", "campaign.paused"]


async def test_each_deputy_gets_the_variants_in_turn(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    variants = [
        await create_version(
            session, campaign=campaign, author=editor, status=VersionStatus.approved, name=f"T{n}"
        )
        for n in range(3)
    ]
    await create_version(session, campaign=campaign, author=editor, status=VersionStatus.draft)
    first, second = await create_deputy(session), await create_deputy(session)
    picks = [
        (await service.choose_version(session, campaign_id=campaign.id, deputy_id=d.id)).id
        for d in (first, first, second, first, first, second)
    ]
    ids = [v.id for v in variants]
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
    subject, body = service.render_letter(
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


async def test_address_rule_follows_the_campaign(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    plain = await create_campaign(session, author=editor)
    with pytest.raises(InvalidInput, match="requires an address"):
        await service.create_text(
            session,
            campaign_id=plain.id,
            name="T",
            subject="Тема",
            body="{{ citizen.address }}",
            actor=editor,
        )
    needs = await create_campaign(session, author=editor, requires_address=True)
    version = await service.create_text(
        session,
        campaign_id=needs.id,
        name="T",
        subject="Тема",
        body="{{ citizen.address }}",
        actor=editor,
    )
    await service.submit_version(session, version_id=version.id, actor=editor)
    # The campaign cannot stop requiring an address that a vetted text uses.
    data = CampaignIn(slug=needs.slug, title=needs.title, requires_address=False)
    with pytest.raises(Conflict, match=r"citizen\.address"):
        await service.update_campaign(session, campaign_id=needs.id, data=data, actor=editor)


async def test_diff_between_versions(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    v1 = await create_version(session, campaign=campaign, author=editor, body="раз\nдва\nтри")
    await service.save_version(
        session, text_id=v1.text_id, subject=v1.subject, body="раз\nДВА\nтри", actor=editor
    )
    lines = await service.diff_versions(session, text_id=v1.text_id, from_number=1, to_number=2)
    assert "-два" in lines
    assert "+ДВА" in lines
    assert (
        await session.scalar(select(AppealVersion.number).order_by(AppealVersion.id.desc()))
    ) == 2


async def test_a_concurrent_save_is_a_conflict_not_a_crash(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if session.get_bind().dialect.name == "sqlite":
        # SQLite serialises writers: a stale reader cannot write at all (SQLITE_BUSY_SNAPSHOT).
        pytest.skip("needs concurrent writers (PostgreSQL)")
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    v1 = await create_version(session, campaign=campaign, author=editor)
    await session.commit()
    real_get_text = service.get_text

    async def get_text_then_someone_else_saves(inner: AsyncSession, *, text_id: int) -> AppealText:
        text = await real_get_text(inner, text_id=text_id)
        monkeypatch.setattr(service, "get_text", real_get_text)  # only once
        async with sessionmaker() as other:
            await service.save_version(
                other, text_id=text_id, subject="Другая тема", body="Другой текст", actor=editor
            )
            await other.commit()
        return text

    monkeypatch.setattr(service, "get_text", get_text_then_someone_else_saves)
    with pytest.raises(Conflict, match="same moment"):
        await service.save_version(
            session, text_id=v1.text_id, subject="Моя тема", body="Мой текст", actor=editor
        )
