"""Bulk letter creation gives what choose_version + create_letter give, one by one."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service as campaigns_service
from app.campaigns.models import VersionRotation, VersionStatus
from app.config import Settings
from app.deputies import service as deputies_service
from app.letters import bulk
from app.letters import service as letters_service
from app.letters.models import Letter
from tests.databases import stored_as_sqlalchemy_does
from tests.factories import create_staff, create_version, message_of, stored_message
from tests.letters.conftest import make_world

CITIZEN = {"full_name": "Мария Петрова", "locality": "Тверь"}


async def _versions(session: AsyncSession, campaign_id: int) -> list[bulk.VersionText]:
    versions = await campaigns_service.approved_versions(session, campaign_id=campaign_id)
    return [bulk.VersionText.of(v) for v in versions]


async def test_same_letters_and_same_rotation(session: AsyncSession, settings: Settings) -> None:
    world = await make_world(session, deputies=2)
    author = await create_staff(session)
    await create_version(
        session, campaign=world.campaign, author=author, status=VersionStatus.approved,
        subject="Второй вариант", name="Второй текст",
    )  # fmt: skip
    deputies = await deputies_service.get_deputies(session, ids=[d.id for d in world.deputies])
    deputies.sort(key=lambda d: d.id)
    date = dt.date(2026, 11, 27)
    # One by one, for the first deputy; in bulk, for both: the rotation goes on where it was.
    one = await campaigns_service.choose_version(
        session, campaign_id=world.campaign.id, deputy_id=deputies[0].id
    )
    subject, body = campaigns_service.render_letter(
        one, deputy=deputies[0], citizen=CITIZEN, date=date
    )
    single = await letters_service.create_letter(
        session, deputy=deputies[0], campaign_id=world.campaign.id, campaign_title="T",
        appeal_version_id=one.id, sender_name="Мария Петрова", sender_email="m@example.org",
        reply_to=True, subject=subject, body=body, settings=settings, sender_key="k1",
    )  # fmt: skip
    builder = bulk.LetterBuilder(
        campaign_id=world.campaign.id, campaign_title="T", citizen=CITIZEN,
        sender_name="Мария Петрова", sender_email="m@example.org", reply_to=True,
        sender_key="k2", date=date, settings=settings,
    )  # fmt: skip
    ids = await bulk.create_letters(
        session, deputies=[bulk.DeputyCard.of(d) for d in deputies],
        versions=await _versions(session, world.campaign.id), builder=builder,
    )  # fmt: skip
    letters = {x.id: x for x in await session.scalars(select(Letter))}
    first, second = letters[ids[0]], letters[ids[1]]
    # The first deputy's second letter uses the other variant; the second deputy's first, the first.
    assert first.appeal_version_id != single.appeal_version_id
    assert second.appeal_version_id == single.appeal_version_id
    for made in (first, second):
        assert made.recipient_email in {d.email for d in deputies}
        assert (made.sender_name, made.sender_email, made.status) == (
            single.sender_name, single.sender_email, single.status,
        )  # fmt: skip
    a = message_from_bytes(message_of(single), policy=policy.default)
    b = message_from_bytes(await stored_message(session, ids[0]) or b"", policy=policy.default)
    assert list(a.keys()) == list(b.keys())
    assert a["From"] == b["From"]
    assert a["Reply-To"] == b["Reply-To"]
    assert a["To"] == b["To"]


async def test_a_wrong_prediction_is_built_again(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(session, deputies=1)
    author = await create_staff(session)
    await create_version(
        session, campaign=world.campaign, author=author, status=VersionStatus.approved,
        subject="Второй вариант", name="Второй текст",
    )  # fmt: skip
    deputies = await deputies_service.get_deputies(session, ids=[world.deputies[0].id])
    versions = await _versions(session, world.campaign.id)

    async def create(key: str) -> list[int]:
        builder = bulk.LetterBuilder(
            campaign_id=world.campaign.id, campaign_title="T", citizen=CITIZEN,
            sender_name="М П", sender_email="m@example.org", reply_to=False, sender_key=key,
            date=dt.date(2026, 11, 27), settings=settings,
        )  # fmt: skip
        return await bulk.create_letters(
            session, deputies=[bulk.DeputyCard.of(d) for d in deputies], versions=versions,
            builder=builder,
        )  # fmt: skip

    [first] = await create("a")

    async def stale(*args: object, **kw: object) -> dict[int, int]:
        return {}  # as if a concurrent confirmation moved the counter after it was read

    monkeypatch.setattr(bulk, "_current", stale)
    [second] = await create("b")
    letters = {x.id: x for x in await session.scalars(select(Letter))}
    assert letters[first].appeal_version_id != letters[second].appeal_version_id
    message = message_from_bytes(
        await stored_message(session, second) or b"", policy=policy.default
    )
    subject = "Второй вариант"
    expected = next(v for v in versions if v.id == letters[second].appeal_version_id)
    assert (message["Subject"] == subject) == (expected.subject == subject)


async def test_one_approved_text_moves_no_counter(
    session: AsyncSession, settings: Settings
) -> None:
    world = await make_world(session, deputies=2)
    deputies = await deputies_service.get_deputies(session, ids=[d.id for d in world.deputies])
    builder = bulk.LetterBuilder(
        campaign_id=world.campaign.id, campaign_title="T", citizen=CITIZEN,
        sender_name="М П", sender_email="m@example.org", reply_to=False, sender_key="a",
        date=dt.date(2026, 11, 27), settings=settings,
    )  # fmt: skip
    ids = await bulk.create_letters(
        session, deputies=[bulk.DeputyCard.of(d) for d in deputies],
        versions=await _versions(session, world.campaign.id), builder=builder,
    )  # fmt: skip
    assert len(ids) == 2
    assert list(await session.scalars(select(VersionRotation))) == []
    one = await campaigns_service.choose_version(
        session, campaign_id=world.campaign.id, deputy_id=deputies[0].id
    )
    assert list(await session.scalars(select(VersionRotation))) == []
    assert one.id == (await _versions(session, world.campaign.id))[0].id


async def test_letters_come_back_as_built_in_batches(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_SQLITE_ROWS", 2)  # SQLite: 5 letters in three INSERTs
    world = await make_world(session, deputies=5)
    deputies = await deputies_service.get_deputies(session, ids=[d.id for d in world.deputies])
    builder = bulk.LetterBuilder(
        campaign_id=world.campaign.id, campaign_title="T", citizen=CITIZEN,
        sender_name="Мария Петрова", sender_email="m@example.org", reply_to=False,
        sender_key="k", date=dt.date(2026, 11, 27), settings=settings,
    )  # fmt: skip
    cards = [bulk.DeputyCard.of(d) for d in deputies]
    versions = await _versions(session, world.campaign.id)
    prepared = await bulk.prepare_letters(
        session, deputies=cards, versions=versions, builder=builder
    )
    ids = await bulk.create_letters(session, deputies=cards, versions=versions, builder=builder)
    assert len(set(ids)) == 5
    for card, letter_id in zip(cards, ids, strict=True):
        letter = await session.get(Letter, letter_id, populate_existing=True)
        assert letter is not None
        built = prepared.rows[card.id]
        for column, value in built.items():
            if column not in ("message", "message_id"):
                assert getattr(letter, column) == value, column
        assert letter.deputy_id == card.id  # each id matches its own letter, in order
        stored = message_from_bytes(
            await stored_message(session, letter_id) or b"", policy=policy.default
        )
        assert stored["Message-ID"] == letter.message_id
        assert stored["To"].addresses[0].addr_spec == card.email
    # Stored as SQLAlchemy stores them, whichever way they went in (on SQLite, text that
    # compares in time order with what the ORM writes).
    stored_times = await session.execute(
        text(
            "SELECT created_at, next_attempt_at, updated_at FROM letter WHERE id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": ids},
    )
    assert all(stored_as_sqlalchemy_does(value) for row in stored_times for value in row)
