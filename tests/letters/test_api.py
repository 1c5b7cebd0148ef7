"""The citizen flow's JSON API: the same checks, limits and errors as the pages, never a 500."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx
import pytest
from fastapi import FastAPI
from itsdangerous import TimestampSigner
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.letters.models import Letter
from app.letters.submissions import Submission
from tests.letters.conftest import Inbox, api_body, mail_sent, make_world


async def _submit(
    citizen: httpx.AsyncClient, app: FastAPI, inbox: Inbox, slug: str, body: dict[str, object]
) -> dict[str, str]:
    response = await citizen.post(f"/api/v1/campaigns/{slug}/submissions", json=body)
    assert response.status_code == 202, response.text
    await mail_sent(app)
    return inbox.links()


async def test_submit_confirm_status_cancel_erase(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    campaigns = await citizen.get("/api/v1/campaigns")
    assert [c["slug"] for c in campaigns.json()] == ["hospital"]
    links = await _submit(citizen, citizen_app, inbox, "hospital", api_body(world))
    pending = await citizen.get(f"/api/v1/status/{links['status']}")
    assert pending.json() == {
        "submission": "pending",
        "campaign": "Сохраним больницу",
        "letters": [],
        "skipped_deputy_ids": [],
    }
    confirmed = await citizen.post("/api/v1/confirmations", json={"token": links["confirm"]})
    assert confirmed.status_code == 201, confirmed.text
    letters = confirmed.json()["letters"]
    assert [x["status"] for x in letters] == ["queued"] * 3
    # The answer (built from the confirmation, not read back) is what the status link shows.
    assert confirmed.json() == (await citizen.get(f"/api/v1/status/{links['status']}")).json()
    cancelled = await citizen.post(
        f"/api/v1/status/{links['status']}/cancel", json={"letter_ids": [letters[0]["id"]]}
    )
    assert [x["status"] for x in cancelled.json()["letters"]] == ["cancelled", "queued", "queued"]
    erased = await citizen.post(f"/api/v1/status/{links['status']}/erase")
    assert erased.json()["submission"] == "erased"
    assert {x["status"] for x in erased.json()["letters"]} == {"cancelled"}


async def test_validation_names_each_field(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    response = await citizen.post(
        "/api/v1/campaigns/hospital/submissions",
        json=api_body(world, full_name="Анна\r\nBcc: x@example.org", email="x", consent=False),
    )
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"full_name", "email", "consent"}
    unknown_deputy = await citizen.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, deputy_ids=[999999])
    )
    assert unknown_deputy.status_code == 422
    assert unknown_deputy.json()["details"][0]["field"] == "deputy_ids"
    assert (
        await citizen.post("/api/v1/campaigns/hospital/submissions", json={})
    ).status_code == 422
    assert (
        await citizen.post("/api/v1/campaigns/nope/submissions", json=api_body(world))
    ).status_code == 404
    bad_json = await citizen.post(
        "/api/v1/campaigns/hospital/submissions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad_json.status_code == 422
    await session.rollback()
    assert await session.scalar(select(func.count(Submission.id))) == 0


async def test_duplicates_are_skipped_at_confirmation_and_409_when_nothing_is_new(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    first = [world.deputies[0].id]
    links = await _submit(
        citizen, citizen_app, inbox, "hospital", api_body(world, deputy_ids=first)
    )
    assert (
        await citizen.post("/api/v1/confirmations", json={"token": links["confirm"]})
    ).status_code == 201
    # The same address in another case: accepted as any other (the answer must not tell
    # whoever sends an address whether its owner took part).
    again = await citizen.post(
        "/api/v1/campaigns/hospital/submissions",
        json=api_body(world, deputy_ids=first, email="MARIA@example.org"),
    )
    assert again.status_code == 202
    await mail_sent(citizen_app)
    duplicate = inbox.links()
    unseen = await citizen.post(
        "/api/v1/campaigns/hospital/submissions",
        json=api_body(world, deputy_ids=first, email="nobody@example.org"),
    )
    assert unseen.status_code == 202
    assert {**again.json(), "expires_at": None} == {**unseen.json(), "expires_at": None}
    await mail_sent(citizen_app)
    # With others too.
    mixed = await _submit(
        citizen, citizen_app, inbox, "hospital", api_body(world, email="Maria@Example.org")
    )
    # At confirmation, by the mailbox's owner: nothing new is a 409, the others are skipped.
    nothing = await citizen.post("/api/v1/confirmations", json={"token": duplicate["confirm"]})
    assert nothing.status_code == 409
    assert nothing.json()["error"] == "duplicate"
    partly = await citizen.post("/api/v1/confirmations", json={"token": mixed["confirm"]})
    assert partly.status_code == 201
    assert partly.json()["skipped_deputy_ids"] == first
    assert len(partly.json()["letters"]) == 2
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 3


async def test_duplicate_at_confirmation_is_a_409_not_a_500(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    await _submit(citizen, citizen_app, inbox, "hospital", api_body(world))
    one = inbox.links()
    await _submit(citizen, citizen_app, inbox, "hospital", api_body(world))
    two = inbox.links()
    assert (
        await citizen.post("/api/v1/confirmations", json={"token": one["confirm"]})
    ).status_code == 201
    second = await citizen.post("/api/v1/confirmations", json={"token": two["confirm"]})
    assert second.status_code == 409
    assert second.json()["error"] == "duplicate"
    # The link is used and the request keeps nothing personal; its status link shows it, every
    # deputy skipped.
    replay = await citizen.post("/api/v1/confirmations", json={"token": two["confirm"]})
    assert replay.status_code == 409
    assert replay.json()["error"] == "link_used"
    status = await citizen.get(f"/api/v1/status/{two['status']}")
    assert status.json()["letters"] == []
    assert len(status.json()["skipped_deputy_ids"]) == 3
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 3
    rows = (await session.execute(select(Submission.status, Submission.email))).all()
    assert sorted(rows) == [("confirmed", None), ("confirmed", None)]


async def test_concurrent_confirmations_create_letters_once(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    links = await _submit(citizen, citizen_app, inbox, "hospital", api_body(world))
    results = await asyncio.gather(
        *[citizen.post("/api/v1/confirmations", json={"token": links["confirm"]}) for _ in range(4)]
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 3


async def test_expired_replayed_and_forged_links(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    links = await _submit(citizen, citizen_app, inbox, "hospital", api_body(world))
    await session.execute(
        update(Submission).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    await session.commit()
    expired = await citizen.post("/api/v1/confirmations", json={"token": links["confirm"]})
    assert expired.status_code == 410
    page = await citizen.get(f"/confirm/{links['confirm']}")
    assert page.status_code == 410
    forged = await citizen.post("/api/v1/confirmations", json={"token": links["confirm"] + "x"})
    assert forged.status_code == 404
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 0


async def test_signature_older_than_the_validity_is_gone_even_after_the_purge(
    citizen: httpx.AsyncClient,
    citizen_app: FastAPI,
    citizen_settings: object,
    inbox: Inbox,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(session)
    links = await _submit(citizen, citizen_app, inbox, "hospital", api_body(world))
    await session.execute(delete(Submission))
    await session.commit()
    later = int(time.time()) + 25 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    response = await citizen.post("/api/v1/confirmations", json={"token": links["confirm"]})
    assert response.status_code == 410


async def test_header_injection_impossible(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    for name in ("Анна\r\nBcc: x@example.org", "Анна\nBcc: x@example.org", "Анна\u2028Bcc: x"):
        response = await citizen.post(
            "/api/v1/campaigns/hospital/submissions", json=api_body(world, full_name=name)
        )
        assert response.status_code == 422
    await citizen.post(
        "/campaigns/hospital/RU-TVE/submit",
        data={
            "full_name": "Анна\r\nBcc: x@example.org",
            "email": "a@example.org",
            "locality": "Тверь",
            "consent": "yes",
            "deputy": str(world.deputies[0].id),
        },
    )
    await mail_sent(citizen_app)
    assert inbox.messages == []
    await session.rollback()
    assert await session.scalar(select(func.count(Submission.id))) == 0
    # An e-mail field cannot carry a header either.
    response = await citizen.post(
        "/api/v1/campaigns/hospital/submissions",
        json=api_body(world, email="a@example.org\r\nBcc: x@example.org"),
    )
    assert response.status_code == 422


async def test_oversized_body_is_refused(citizen: httpx.AsyncClient, session: AsyncSession) -> None:
    await make_world(session)
    response = await citizen.post(
        "/campaigns/hospital/RU-TVE/submit",
        content=b"full_name=" + b"a" * 100_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


async def test_openapi_describes_the_flow(citizen: httpx.AsyncClient) -> None:
    paths = (await citizen.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/campaigns/{slug}/submissions",
        "/api/v1/confirmations",
        "/api/v1/status/{token}",
        "/api/v1/status/{token}/cancel",
        "/api/v1/status/{token}/erase",
    ):
        assert path in paths
