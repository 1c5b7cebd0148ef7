"""Delivery services: the retention purge, and the `appeals delivery` commands."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.cli import app as cli
from app.config import Settings, get_settings
from app.db import utcnow
from app.delivery import service
from app.delivery.models import SinkMessage
from app.letters.models import Letter, LetterMessage, LetterStatus
from tests.delivery.conftest import letters
from tests.factories import create_letter


async def test_purge_erases_personal_data_past_retention_and_keeps_counts(
    settings: Settings, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = settings.model_copy(update={"retention_days": 30})
    old = utcnow() - dt.timedelta(days=31)
    recent = utcnow() - dt.timedelta(days=29)
    made = {}
    for label, status, finished in [
        ("old_sent", LetterStatus.sent, old),
        ("old_failed", LetterStatus.failed, old),
        ("old_cancelled", LetterStatus.cancelled, old),
        ("recent_sent", LetterStatus.sent, recent),
        ("held", LetterStatus.held, None),
        ("deferred", LetterStatus.deferred, None),
    ]:
        letter = await create_letter(session, settings=settings)
        letter.status = status
        letter.finished_at = finished
        letter.created_at = old
        made[label] = letter.id
    session.add(SinkMessage(mail_from="a@b.c", rcpt_to="d@e.f", data=b"x", received_at=old))
    session.add(SinkMessage(mail_from="a@b.c", rcpt_to="d@e.f", data=b"y", received_at=recent))
    await session.commit()

    assert await service.purge(session, settings=settings) == 3
    await session.commit()
    assert await service.purge(session, settings=settings) == 0  # idempotent

    rows = {r.id: r for r in await letters(sessionmaker)}
    async with sessionmaker() as s:
        bodies = set(await s.scalars(select(LetterMessage.letter_id)))
    assert bodies == {made[k] for k in ("recent_sent", "held", "deferred")}
    for label in ("old_sent", "old_failed", "old_cancelled"):
        row = rows[made[label]]
        assert (row.sender_name, row.sender_email) == (None, None), label
        assert row.purged_at is not None
    for label in ("recent_sent", "held", "deferred"):
        row = rows[made[label]]
        assert row.sender_name == "Мария Петрова", label
        assert row.purged_at is None
    # Counts survive: statuses, campaigns, deputies and dates stay.
    async with sessionmaker() as s:
        progress = await service.campaign_progress(s, campaign_id=1)
        sink = list(await s.scalars(select(SinkMessage.data)))
    assert progress.counts == {"sent": 2, "failed": 1, "cancelled": 1, "held": 1, "deferred": 1}
    assert sink == [b"y"]


def test_delivery_commands(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("APPEALS_DATABASE_URL", database_url)
    monkeypatch.setenv("APPEALS_ENVIRONMENT", "test")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        result = runner.invoke(cli, ["delivery", "pause-campaign", "5", "--reason", "review"])
        assert result.exit_code == 0, result.output
        assert "campaign 5 paused" in result.output
        result = runner.invoke(cli, ["delivery", "pauses"])
        assert "campaign 5 until resumed review" in result.output
        result = runner.invoke(cli, ["delivery", "progress", "5"])
        assert result.output.strip() == "campaign 5: no letters; paused"
        result = runner.invoke(cli, ["delivery", "resume-campaign", "5"])
        assert "campaign 5 resumed" in result.output
        result = runner.invoke(cli, ["delivery", "resume-campaign", "5"])
        assert "was not paused" in result.output
        result = runner.invoke(cli, ["delivery", "purge"])
        assert result.exit_code == 0
        assert result.output.startswith("purged 0 letters (retention 30 days)")
        result = runner.invoke(cli, ["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert "sent 0, deferred 0, failed 0" in result.output
        monkeypatch.setenv("APPEALS_ENVIRONMENT", "production")
        monkeypatch.setenv("APPEALS_SECRET_KEY", "k" * 40)
        get_settings.cache_clear()
        result = runner.invoke(cli, ["worker", "--once"])
        assert result.exit_code == 1
        assert "APPEALS_SMTP_HOST is not set" in result.output
    finally:
        get_settings.cache_clear()


async def test_progress_counts_held_letters_as_unfinished(
    settings: Settings, session: AsyncSession
) -> None:
    letter = await create_letter(session, settings=settings, campaign_id=3)
    other = await create_letter(session, settings=settings, campaign_id=3)
    letter.status = LetterStatus.sent
    other.status = LetterStatus.held
    await session.commit()
    progress = await service.campaign_progress(session, campaign_id=3)
    assert progress.total == 2
    assert not progress.finished
    await session.execute(
        update(Letter).where(Letter.id == other.id).values(status=LetterStatus.cancelled)
    )
    progress = await service.campaign_progress(session, campaign_id=3)
    assert progress.finished
    assert not (await service.campaign_progress(session, campaign_id=99)).finished
