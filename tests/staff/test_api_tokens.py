"""API tokens: bearer tokens for scripts, over real HTTP through the ASGI app, and their last use
noted at most once a minute, never by a read's own session."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections import Counter

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import VersionStatus
from app.config import Settings
from app.main import create_app
from app.staff import api_tokens
from app.staff.models import ApiToken, Role
from app.staff.sessions import digest
from tests.factories import create_api_token, create_campaign, create_staff, create_version
from tests.staff.auth import login_ok

# Issue 16, point 4: `UPDATE api_token SET last_used_at`, flushed by autoflush inside GETs, took
# SQLite's write lock in reads, and 12 parallel staff API reads answered 500 in 285 of 360 calls.


async def test_api_tokens_for_scripts(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await create_staff(session, Role.editor, email="ed@campaign.example.org")
    await session.commit()
    csrf = await login_ok(client, "ed@campaign.example.org")
    created = await client.post(
        "/api/v1/staff/tokens", json={"name": "export script"}, headers={"X-CSRF-Token": csrf}
    )
    assert created.status_code == 201
    raw = created.json()["token"]
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {raw}"}
    # Bearer requests need no CSRF token.
    made = await client.post(
        "/api/v1/staff/campaigns", json={"slug": "s", "title": "T"}, headers=bearer
    )
    assert made.status_code == 201
    listed = await client.get("/api/v1/staff/tokens", headers=bearer)
    assert "token" not in listed.json()[0]
    assert listed.json()[0]["last_used_at"] is not None
    revoked = await client.delete(f"/api/v1/staff/tokens/{created.json()['id']}", headers=bearer)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/staff/me", headers=bearer)).status_code == 401
    for junk in ("Bearer apl_forged", "Bearer " + "x" * 5000, "Basic Zm9vOmJhcg=="):
        response = await client.get("/api/v1/staff/me", headers={"Authorization": junk})
        assert response.status_code == 401
    # Bearer tokens do not open pages.
    assert (await client.get("/staff", headers=bearer)).status_code == 303


async def _last_used(session: AsyncSession, raw: str) -> dt.datetime | None:
    await session.rollback()  # a fresh snapshot (SQLite keeps a read transaction's)
    return await session.scalar(
        select(ApiToken.last_used_at).where(ApiToken.token_hash == digest(raw))
    )


async def test_last_use_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = await create_staff(session, Role.editor)
    raw = await create_api_token(session, staff)
    await session.commit()
    bearer = {"Authorization": f"Bearer {raw}"}
    assert await _last_used(session, raw) is None
    assert (await client.get("/api/v1/staff/me", headers=bearer)).status_code == 200
    first = await _last_used(session, raw)
    assert first is not None
    assert dt.datetime.now(dt.UTC) - first < dt.timedelta(seconds=30)
    for _ in range(3):  # within the minute: not written again
        assert (await client.get("/api/v1/staff/campaigns", headers=bearer)).status_code == 200
    assert await _last_used(session, raw) == first
    # Once the minute has passed (here: a shorter minute), the next use is written, by a read
    # and by a write alike.
    monkeypatch.setattr(api_tokens, "LAST_USE_EVERY", dt.timedelta(0))
    assert (await client.get("/api/v1/staff/me", headers=bearer)).status_code == 200
    second = await _last_used(session, raw)
    assert second is not None
    assert second > first
    made = await client.post(
        "/api/v1/staff/campaigns", json={"slug": "water", "title": "Вода"}, headers=bearer
    )
    assert made.status_code == 201
    third = await _last_used(session, raw)
    assert third is not None
    assert third > second


async def test_a_failed_note_of_last_use_does_not_fail_the_read(
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    staff = await create_staff(session, Role.editor)
    raw = await create_api_token(session, staff)
    await session.commit()
    calls = []

    async def locked(session: AsyncSession, *, token_id: int, at: dt.datetime) -> None:
        calls.append(token_id)
        raise OperationalError("UPDATE api_token ...", {}, Exception("database is locked"))

    monkeypatch.setattr(api_tokens, "note_use", locked)
    bearer = {"Authorization": f"Bearer {raw}"}
    with caplog.at_level(logging.WARNING, logger="appeals.staff"):
        for _ in range(3):
            response = await client.get("/api/v1/staff/me", headers=bearer)
            assert response.status_code == 200
            assert response.json()["id"] == staff.id
    assert len(calls) == 1  # tried once; the next try comes a minute later
    assert await _last_used(session, raw) is None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"could not note the use of API token {calls[0]}" in logged
    assert raw not in caplog.text


PARALLEL = 12
ROUNDS = 25  # 12 x 25 = 300 calls


async def test_parallel_staff_api_reads_with_bearer_tokens_never_fail(
    settings: Settings, session: AsyncSession
) -> None:
    members = [
        await create_staff(session, Role.admin, email="admin@campaign.example.org"),
        await create_staff(session, Role.editor, email="editor@campaign.example.org"),
        await create_staff(session, Role.lawyer, email="lawyer@campaign.example.org"),
        await create_staff(session, Role.analyst, email="analyst@campaign.example.org"),
    ]
    admin, editor, lawyer, analyst = [
        {"Authorization": f"Bearer {await create_api_token(session, m)}"} for m in members
    ]
    campaign = await create_campaign(session, author=members[1])
    version = await create_version(
        session, campaign=campaign, author=members[1], status=VersionStatus.in_review
    )
    await session.commit()
    reads = [
        ("/api/v1/staff/review-queue", lawyer),
        ("/api/v1/staff/campaigns", editor),
        (f"/api/v1/staff/campaigns/{campaign.id}", editor),
        (f"/api/v1/staff/texts/{version.text_id}", editor),
        (f"/api/v1/staff/versions/{version.id}", lawyer),
        ("/api/v1/staff/audit", admin),
        ("/api/v1/staff/members", admin),
        ("/api/v1/staff/me", analyst),
        ("/api/v1/staff/stats", analyst),
        ("/api/v1/staff/stats/export?format=csv", analyst),
        ("/api/v1/staff/stats/export?format=json", admin),
        ("/api/v1/staff/tokens", editor),
    ]
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    outcomes: Counter[tuple[int, str]] = Counter()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def reader(start: int) -> None:
                for path, headers in itertools.islice(
                    itertools.cycle(reads), start, start + ROUNDS
                ):
                    response = await client.get(path, headers=headers)
                    outcomes[response.status_code, path.partition("?")[0]] += 1

            await asyncio.gather(*(reader(n) for n in range(PARALLEL)))
    finally:
        await app.state.engine.dispose()
    assert sum(outcomes.values()) == PARALLEL * ROUNDS
    failed = {key: n for key, n in outcomes.items() if key[0] != 200}
    assert failed == {}, f"{sum(failed.values())} of {PARALLEL * ROUNDS} failed: {failed}"
