"""The per-process snapshot of the open campaign and its deputies (app.letters.cache): staff
actions in this process take effect at once, other processes' within its TTL, and a confirmation
never creates letters from a campaign that is no longer open or a version no longer approved."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.campaigns import service as campaigns_service
from app.campaigns.models import AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.config import Settings
from app.db import begin_write, utcnow
from app.deputies.models import Deputy
from app.errors import Gone
from app.letters import confirmation
from app.letters.models import Letter
from app.letters.submissions import Submission, SubmissionStatus
from app.main import create_app
from app.staff.models import Role
from tests.factories import create_staff, create_version, stored_message
from tests.letters.conftest import Inbox, World, form, mail_sent, make_world

SUBMIT = "/campaigns/hospital/RU-TVE/submit"


async def test_a_pause_in_this_process_takes_effect_at_once(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    assert (await citizen.post(SUBMIT, data=form(world))).status_code == 303  # snapshot taken
    editor = await create_staff(session, Role.editor)
    await campaigns_service.set_campaign_status(
        session, campaign_id=world.campaign.id, status=CampaignStatus.paused, actor=editor
    )
    await session.commit()
    response = await citizen.post(SUBMIT, data=form(world, email="second@example.org"))
    assert response.status_code == 410


async def test_another_process_change_is_seen_within_the_ttl_and_confirmation_rechecks(
    citizen_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(session)
    app: FastAPI = create_app(citizen_settings.model_copy(update={"campaign_cache_seconds": 0.5}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post(SUBMIT, data=form(world))).status_code == 303
        await mail_sent(app)
        token = inbox.links()["confirm"]
        # Another process closes the campaign (no staff action here: the generation is unchanged).
        await session.execute(
            update(Campaign)
            .where(Campaign.id == world.campaign.id)
            .values(status=CampaignStatus.closed)
        )
        await session.commit()
        # Within the TTL the snapshot may still take a pending request ...
        late = await client.post(SUBMIT, data=form(world, email="late@example.org"))
        assert late.status_code == 303
        # ... but no confirmation creates letters of a closed campaign.
        confirmed = await client.post("/api/v1/confirmations", json={"token": token})
        assert confirmed.status_code == 410
        await asyncio.sleep(0.6)
        after = await client.post(SUBMIT, data=form(world, email="after@example.org"))
        assert after.status_code == 410
    await app.state.rate_limiter.aclose()
    await app.state.engine.dispose()
    assert await session.scalar(select(func.count(Letter.id))) == 0


async def test_a_version_withdrawn_elsewhere_gives_no_letters(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    assert (await citizen.post(SUBMIT, data=form(world))).status_code == 303
    await mail_sent(citizen_app)
    await session.execute(update(AppealVersion).values(status=VersionStatus.withdrawn))
    await session.commit()
    confirmed = await citizen.post(
        "/api/v1/confirmations", json={"token": inbox.links()["confirm"]}
    )
    assert confirmed.status_code in (409, 410)
    assert await session.scalar(select(func.count(Letter.id))) == 0


async def test_confirmation_locks_the_approved_versions_on_postgresql(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with its database lock")
    world = await make_world(session)
    async with sessionmaker() as confirming:
        versions = list(
            await confirming.scalars(
                confirmation._approved(confirming),
                {"campaign_id": world.campaign.id, "now": utcnow()},
            )
        )
        assert len(versions) == 1
        # A withdrawal in another transaction waits for the confirming one to commit.
        async with sessionmaker() as withdrawing:
            await withdrawing.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(DBAPIError):
                await withdrawing.execute(
                    update(AppealVersion)
                    .where(AppealVersion.id == versions[0])
                    .values(status=VersionStatus.withdrawn)
                )
            await withdrawing.rollback()
        await confirming.rollback()


@contextmanager
def _statements(session: AsyncSession) -> Iterator[list[str]]:
    """The SQL statements the session's engine sends meanwhile, in order."""
    engine = session.get_bind()
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]).strip())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


class Confirming:
    """A confirmation taken in two steps, as the route does, with a change in between."""

    def __init__(self, app: FastAPI, settings: Settings, session: AsyncSession) -> None:
        self.cache = app.state.intake_cache
        self.settings = settings
        self.session = session

    async def prepare(self, token: str) -> confirmation.Prepared:
        prepared = await confirmation.prepare(
            self.session, token=token, settings=self.settings, cache=self.cache
        )
        await self.session.commit()
        return prepared

    async def confirm(self, prepared: confirmation.Prepared) -> confirmation.Confirmed:
        """In a write transaction, left open: the caller commits or rolls back."""
        await begin_write(self.session)
        return await confirmation.confirm(
            self.session, prepared=prepared, settings=self.settings, cache=self.cache
        )


async def _submitted(
    citizen: httpx.AsyncClient, app: FastAPI, inbox: Inbox, session: AsyncSession, deputies: int = 3
) -> tuple[World, str]:
    """A submission to every deputy of a new world; its confirmation token."""
    made = await make_world(session, deputies=deputies)
    assert (await citizen.post(SUBMIT, data=form(made))).status_code == 303
    await mail_sent(app)
    return made, inbox.links()["confirm"]


async def test_letters_built_before_the_transaction_follow_a_version_change_in_between(
    citizen: httpx.AsyncClient,
    citizen_app: FastAPI,
    citizen_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world, token = await _submitted(citizen, citizen_app, inbox, session)
    async with sessionmaker() as confirming:
        steps = Confirming(citizen_app, citizen_settings, confirming)
        prepared = await steps.prepare(token)
        (old,) = prepared.letters.versions
        # Meanwhile the approved text is replaced by another, behind the process's back: its
        # snapshot still has the old text.
        author = await create_staff(session)
        new = await create_version(
            session,
            campaign=world.campaign,
            author=author,
            status=VersionStatus.approved,
            body="Новый текст. {{ citizen.full_name }}",
        )
        await session.execute(
            update(AppealVersion)
            .where(AppealVersion.id == old.id)
            .values(status=VersionStatus.withdrawn)
        )
        await session.commit()
        with _statements(confirming) as sent:
            confirmed = await steps.confirm(prepared)
        await confirming.commit()
    assert len(confirmed.letter_ids) == 3
    if session.get_bind().dialect.name == "sqlite":
        # The first pass saw the change and wrote nothing; the second writes in a transaction
        # of its own that holds the write lock from its start (a read then a write would fail
        # at once with "database is locked" if another process wrote in between).
        inserted = next(i for i, s in enumerate(sent) if s.startswith("INSERT INTO letter "))
        begins = [s for s in sent[:inserted] if s.startswith("BEGIN")]
        assert begins == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
    await session.rollback()
    versions = set(await session.scalars(select(Letter.appeal_version_id)))
    assert versions == {new.id}
    body = message_from_bytes(
        await stored_message(session, confirmed.letter_ids[0]) or b"", policy=policy.default
    ).get_body(("plain",))
    assert body is not None
    assert "Новый текст" in body.get_content()


async def test_a_deputy_deactivated_after_the_letters_were_built_gets_none(
    citizen: httpx.AsyncClient,
    citizen_app: FastAPI,
    citizen_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world, token = await _submitted(citizen, citizen_app, inbox, session)
    gone = world.deputies[0].id
    async with sessionmaker() as confirming:
        steps = Confirming(citizen_app, citizen_settings, confirming)
        prepared = await steps.prepare(token)
        assert gone in prepared.letters.rows
        await session.execute(
            update(Deputy).where(Deputy.id == gone).values(is_active=False, updated_at=utcnow())
        )
        await session.commit()
        confirmed = await steps.confirm(prepared)
        await confirming.commit()
    assert len(confirmed.letter_ids) == len(world.deputies) - 1
    assert confirmed.skipped_deputy_ids == []  # only those already written to are reported
    await session.rollback()
    deputies = set(await session.scalars(select(Letter.deputy_id)))
    assert deputies == {d.id for d in world.deputies} - {gone}


async def test_a_deputy_seen_inactive_by_the_snapshot_but_active_now_gets_a_letter(
    citizen: httpx.AsyncClient,
    citizen_app: FastAPI,
    citizen_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world, token = await _submitted(citizen, citizen_app, inbox, session, deputies=2)
    back = world.deputies[0].id
    # The deputy was inactive when this process took its snapshot, and came back since.
    await session.execute(update(Deputy).where(Deputy.id == back).values(is_active=False))
    await session.commit()
    async with sessionmaker() as confirming:
        steps = Confirming(citizen_app, citizen_settings, confirming)
        await steps.cache.deputy_cards(confirming, ids=[back], fresh=True)
        prepared = await steps.prepare(token)
        assert back not in prepared.letters.rows
        await session.execute(
            update(Deputy).where(Deputy.id == back).values(is_active=True, updated_at=utcnow())
        )
        await session.commit()
        confirmed = await steps.confirm(prepared)
        await confirming.commit()
    await session.rollback()
    assert set(await session.scalars(select(Letter.deputy_id))) == {back, world.deputies[1].id}
    assert len(confirmed.letter_ids) == 2


@pytest.mark.parametrize("change", ["campaign paused", "submission purged"])
async def test_a_change_after_the_letters_were_built_leaves_nothing(
    change: str,
    citizen: httpx.AsyncClient,
    citizen_app: FastAPI,
    citizen_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world, token = await _submitted(citizen, citizen_app, inbox, session)
    async with sessionmaker() as confirming:
        steps = Confirming(citizen_app, citizen_settings, confirming)
        prepared = await steps.prepare(token)
        # Behind the process's back: its snapshot still has the campaign open.
        if change == "campaign paused":
            await session.execute(
                update(Campaign)
                .where(Campaign.id == world.campaign.id)
                .values(status=CampaignStatus.paused)
            )
        else:  # the purge deleted the submission (its link is then an expired one)
            await session.execute(delete(Submission))
        await session.commit()
        with pytest.raises(Gone):
            await steps.confirm(prepared)
        await confirming.rollback()
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 0
    statuses = list(await session.scalars(select(Submission.status)))
    assert statuses == ([SubmissionStatus.pending] if change == "campaign paused" else [])
