"""Texts and versions at the service level: versions are never edited in place, the address
rule, diffs, and a concurrent save."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.campaigns import lifecycle, texts, variants, vetting
from app.campaigns.models import AppealText, AppealVersion, VersionStatus
from app.campaigns.schemas import CampaignIn
from app.errors import Conflict, InvalidInput
from app.staff.models import Role
from tests.factories import create_campaign, create_staff, create_version


async def test_approved_versions_are_immutable_edits_make_new_drafts(
    session: AsyncSession,
) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    v1 = await create_version(
        session, campaign=campaign, author=editor, status=VersionStatus.approved
    )
    original = (v1.subject, v1.body)
    v2 = await texts.save_version(
        session, text_id=v1.text_id, subject="Новая тема", body="Новый текст", actor=editor
    )
    assert (v2.number, v2.status) == (2, VersionStatus.draft)
    await session.refresh(v1)
    assert (v1.subject, v1.body, v1.status) == (*original, VersionStatus.approved)
    # Saving the same wording twice is refused rather than duplicated.
    with pytest.raises(Conflict, match="Nothing changed"):
        await texts.save_version(
            session, text_id=v1.text_id, subject="Новая тема", body="Новый текст", actor=editor
        )
    # Approving v2 supersedes v1 (the same text's older wording).
    lawyer = await create_staff(session, Role.lawyer)
    await vetting.submit_version(session, version_id=v2.id, actor=editor)
    await vetting.approve_version(session, version_id=v2.id, actor=lawyer)
    await session.refresh(v1)
    assert v1.status == VersionStatus.superseded
    assert [v.id for v in await lifecycle.approved_versions(session, campaign_id=campaign.id)] == [
        v2.id
    ]
    # Letters of a superseded wording may still be queued: its approval can be withdrawn too.
    await vetting.withdraw_approval(session, version_id=v1.id, actor=lawyer, comment="Риск")
    assert not await variants.version_is_sendable(session, version_id=v1.id)
    assert await variants.version_is_sendable(session, version_id=v2.id)


async def test_address_rule_follows_the_campaign(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    plain = await create_campaign(session, author=editor)
    with pytest.raises(InvalidInput, match="requires an address"):
        await texts.create_text(
            session,
            campaign_id=plain.id,
            name="T",
            subject="Тема",
            body="{{ citizen.address }}",
            actor=editor,
        )
    needs = await create_campaign(session, author=editor, requires_address=True)
    version = await texts.create_text(
        session,
        campaign_id=needs.id,
        name="T",
        subject="Тема",
        body="{{ citizen.address }}",
        actor=editor,
    )
    await vetting.submit_version(session, version_id=version.id, actor=editor)
    # The campaign cannot stop requiring an address that a vetted text uses.
    data = CampaignIn(slug=needs.slug, title=needs.title, requires_address=False)
    with pytest.raises(Conflict, match=r"citizen\.address"):
        await lifecycle.update_campaign(session, campaign_id=needs.id, data=data, actor=editor)


async def test_diff_between_versions(session: AsyncSession) -> None:
    editor = await create_staff(session, Role.editor)
    campaign = await create_campaign(session, author=editor)
    v1 = await create_version(session, campaign=campaign, author=editor, body="раз\nдва\nтри")
    await texts.save_version(
        session, text_id=v1.text_id, subject=v1.subject, body="раз\nДВА\nтри", actor=editor
    )
    lines = await texts.diff_versions(session, text_id=v1.text_id, from_number=1, to_number=2)
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
    real_get_text = texts.get_text

    async def get_text_then_someone_else_saves(inner: AsyncSession, *, text_id: int) -> AppealText:
        text = await real_get_text(inner, text_id=text_id)
        monkeypatch.setattr(texts, "get_text", real_get_text)  # only once
        async with sessionmaker() as other:
            await texts.save_version(
                other, text_id=text_id, subject="Другая тема", body="Другой текст", actor=editor
            )
            await other.commit()
        return text

    monkeypatch.setattr(texts, "get_text", get_text_then_someone_else_saves)
    with pytest.raises(Conflict, match="same moment"):
        await texts.save_version(
            session, text_id=v1.text_id, subject="Моя тема", body="Мой текст", actor=editor
        )
