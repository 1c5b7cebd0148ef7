"""The citizen's pages over real HTTP: form, preview, e-mail, confirmation, status, erase."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.letters import saving
from app.letters.models import Letter, LetterStatus
from app.letters.submissions import Submission
from tests.factories import stored_message
from tests.letters.conftest import Inbox, form, mail_sent, make_world


async def _submit(
    citizen: httpx.AsyncClient, app: FastAPI, inbox: Inbox, session: AsyncSession, **changes: str
) -> dict[str, str]:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}"
    response = await citizen.post(url + "/submit", data=form(world, **changes))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/check-email"
    await mail_sent(app)
    return inbox.links()


async def test_home_lists_open_campaigns_and_total(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    response = await citizen.get("/", headers={"accept-language": "en"})
    assert response.status_code == 200
    assert world.campaign.title in response.text
    assert "0 letters sent so far" in response.text
    assert (await citizen.get("/regions")).status_code == 200


async def test_campaign_page_and_form(citizen: httpx.AsyncClient, session: AsyncSession) -> None:
    world = await make_world(session)
    page = await citizen.get(f"/campaigns/{world.campaign.slug}")
    assert page.status_code == 200
    assert "Прошу сохранить больницу" in page.text
    assert f"/campaigns/{world.campaign.slug}/{world.region.code}" in page.text
    deputies = await citizen.get(f"/campaigns/{world.campaign.slug}/{world.region.code}")
    assert deputies.status_code == 200
    assert deputies.text.count('name="deputy"') == 3
    assert deputies.text.count(" checked") == 3
    assert 'for="full_name"' in deputies.text


async def test_preview_shows_the_exact_letters(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/preview"
    response = await citizen.post(url, data=form(world))
    assert response.status_code == 200
    assert response.text.count('<article class="preview">') == 3
    assert "Мария Петрова, Тверь" in response.text
    assert "Уважаемый Пётр Сергеевич" in response.text


async def test_whole_flow(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    links = await _submit(citizen, citizen_app, inbox, session)
    assert inbox.rcpt[-1] == ["maria@example.org"]
    assert await session.scalar(select(func.count(Letter.id))) == 0
    page = await citizen.get(f"/confirm/{links['confirm']}")
    assert page.status_code == 200
    assert await session.scalar(select(func.count(Letter.id))) == 0  # a GET changes nothing
    done = await citizen.post(f"/confirm/{links['confirm']}")
    assert done.status_code == 200
    await session.rollback()
    letters = list(await session.scalars(select(Letter)))
    assert len(letters) == 3
    for letter in letters:
        assert b"Content-Type: text/plain" in (await stored_message(session, letter.id) or b"")
    first_id = letters[0].id
    submission = await session.scalar(select(Submission))
    assert submission is not None
    assert submission.email is None
    assert submission.full_name is None
    again = await citizen.post(f"/confirm/{links['confirm']}")
    assert again.status_code == 409
    assert "already been used" in again.text or "уже" in again.text
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 3
    status = await citizen.get(f"/status/{links['status']}")
    assert status.status_code == 200
    assert status.text.count('name="letter"') == 3
    cancel = await citizen.post(f"/status/{links['status']}/cancel", data={"letter": str(first_id)})
    assert cancel.status_code == 303
    await session.rollback()
    states = {x.id: x.status for x in await session.scalars(select(Letter))}
    assert states[first_id] == LetterStatus.cancelled
    assert list(states.values()).count(LetterStatus.queued) == 2


async def test_validation_errors_beside_fields_with_input_kept(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/submit"
    response = await citizen.post(
        url,
        data=form(world, full_name="12", email="not-an-address", consent=None, deputy=[]),
        headers={"accept-language": "en"},
    )
    assert response.status_code == 422
    for name in ("full_name", "email", "consent", "deputies"):
        assert f'id="{name}-error"' in response.text
    assert 'value="not-an-address"' in response.text
    assert 'value="Тверь"' in response.text
    assert await session.scalar(select(func.count(Submission.id))) == 0


async def test_hostile_form_bodies_get_a_clear_answer_and_store_nothing(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/submit"
    urlencoded = {"content-type": "application/x-www-form-urlencoded", "accept-language": "en"}
    # Bad UTF-8 in a name: replaced, then refused as a name (kept out of the database).
    bad = "&".join(f"deputy={d.id}" for d in world.deputies)
    bad += "&full_name=%FF%FE%FD&email=maria%40example.org&locality=%D0%A2%D0%B2&consent=yes"
    response = await citizen.post(url, content=bad.encode(), headers=urlencoded)
    assert response.status_code == 422
    assert 'id="full_name-error"' in response.text
    # More fields than any form has: 400 before anything is looked at.
    many = "&".join(["deputy=1"] * 1001).encode()
    response = await citizen.post(url, content=many, headers=urlencoded)
    assert response.status_code == 400
    assert "Too many fields" in response.text
    # Not URL-encoded at all: Starlette's parser reads it; still a 422 with the fields named.
    response = await citizen.post(
        url, files={"full_name": (None, "Мария Петрова")}, headers={"accept-language": "en"}
    )
    assert response.status_code == 422
    assert 'id="email-error"' in response.text
    assert await session.scalar(select(func.count(Submission.id))) == 0


async def test_a_malformed_submit_path_is_refused_naming_the_parameter(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    data = form(world)
    en = {"accept-language": "en"}
    for path, name in [
        (f"/campaigns/bad.slug/{world.region.code}/submit", "slug"),
        (f"/campaigns/{'s' * 81}/{world.region.code}/submit", "slug"),
        (f"/campaigns/{world.campaign.slug}/RU_TVE/submit", "code"),
        (f"/campaigns/{world.campaign.slug}/RU-TVER/submit", "code"),
    ]:
        response = await citizen.post(path, data=data, headers=en)
        assert response.status_code == 422, path
        assert f"{name}: String should" in response.text
    # A well-formed path that names nothing: 404, as on the form's page.
    missing = await citizen.post(f"/campaigns/nothing/{world.region.code}/submit", data=data)
    assert missing.status_code == 404
    for path in (f"/campaigns/bad%0A/{world.region.code}/submit", "/campaigns/x/RU-TV%0A/submit"):
        # A newline before the end is no match, as for pydantic's patterns.
        assert (await citizen.post(path, data=data)).status_code == 422, path
    assert (
        await citizen.get(f"/campaigns/{world.campaign.slug}/{world.region.code}/submit")
    ).status_code == 405
    assert await session.scalar(select(func.count(Submission.id))) == 0


async def test_an_unexpected_error_on_submit_is_logged_with_its_route_not_its_data(
    citizen: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = await make_world(session)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("maria@example.org")

    monkeypatch.setattr(saving, "save", broken)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/submit"
    with caplog.at_level(logging.ERROR, logger="appeals"):
        response = await citizen.post(url, data=form(world))
    assert response.status_code == 500
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "unexpected RuntimeError" in logged
    assert "on POST /campaigns/{slug}/{code}/submit" in logged
    assert "maria@example.org" not in logged


async def test_script_in_a_name_is_escaped(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/preview"
    response = await citizen.post(url, data=form(world, full_name="Анна <script>alert(1)</script>"))
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


async def test_honeypot_pretends_success(
    citizen: httpx.AsyncClient, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/submit"
    response = await citizen.post(url, data=form(world, website="http://spam.example"))
    assert response.status_code == 303
    await session.rollback()
    assert await session.scalar(select(func.count(Submission.id))) == 0
    assert inbox.messages == []


async def test_erase_leaves_no_personal_data(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    links = await _submit(
        citizen, citizen_app, inbox, session, full_name="Ефросинья Уникальная", locality="Кимры"
    )
    await citizen.post(f"/confirm/{links['confirm']}")
    erased = await citizen.post(f"/status/{links['status']}/erase", data={"sure": "yes"})
    assert erased.status_code == 303
    page = await citizen.get(f"/status/{links['status']}")
    assert page.status_code == 200
    await session.rollback()
    # Every text and binary column of every table: nothing of the sender is left.
    needles = ("Ефросинья", "Уникальная", "Кимры", "maria@example.org", "maria")
    for row in (await session.execute(select(Letter))).scalars():
        assert (row.sender_name, row.sender_email, row.sender_key) == (None, None, None)
        assert await stored_message(session, row.id) is None
        assert row.status == LetterStatus.cancelled
    await _assert_nowhere(session, needles)


async def _assert_nowhere(session: AsyncSession, needles: tuple[str, ...]) -> None:
    from sqlalchemy import LargeBinary, String, Text, text

    from app.db import Base

    for table in Base.metadata.sorted_tables:
        columns = [c.name for c in table.columns if isinstance(c.type, String | Text | LargeBinary)]
        if not columns:
            continue
        rows = (await session.execute(text(f"SELECT {', '.join(columns)} FROM {table.name}"))).all()
        for row in rows:
            for value in row:
                blob = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                for needle in needles:
                    assert needle not in blob, (table.name, needle)


async def test_pages_load_nothing_from_elsewhere_and_send_strict_headers(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    import re

    world = await make_world(session)
    urls = ["/", f"/campaigns/{world.campaign.slug}", f"/campaigns/hospital/{world.region.code}"]
    for url in urls:
        response = await citizen.get(url)
        assert response.status_code == 200
        # Every src and href is a path on this site.
        for target in re.findall(r'(?:src|href|action)="([^"]*)"', response.text):
            assert target.startswith(("/", "#")), (url, target)
        assert "style=" not in response.text
        assert "<script" not in response.text
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    secure = await citizen.get("https://testserver/")
    assert "max-age" in secure.headers["strict-transport-security"]


async def test_english_and_russian(citizen: httpx.AsyncClient, session: AsyncSession) -> None:
    await make_world(session)
    english = await citizen.get("/", headers={"accept-language": "en-GB,en;q=0.9"})
    assert "Open campaigns" in english.text
    russian = await citizen.get("/")
    assert "Открытые кампании" in russian.text
    assert 'lang="ru"' in russian.text


async def test_closed_or_unknown_campaign(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    from app.campaigns.models import CampaignStatus

    await make_world(session, status=CampaignStatus.closed)
    assert (await citizen.get("/campaigns/hospital")).status_code == 410
    assert (await citizen.get("/campaigns/nothing")).status_code == 404
    assert (await citizen.get("/campaigns/hospital/RU-XXX")).status_code in (404, 410)


async def test_address_asked_only_where_the_text_uses_it(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session, requires_address=True)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}"
    page = await citizen.get(url)
    assert 'name="postal_address"' in page.text
    missing = await citizen.post(url + "/preview", data=form(world))
    assert missing.status_code == 422
    assert 'id="postal_address-error"' in missing.text
    ok = await citizen.post(url + "/preview", data=form(world, postal_address="ул. Советская, 1"))
    assert "ул. Советская, 1" in ok.text


async def test_duplicates_explained_only_at_confirmation(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    links = await _submit(citizen, citizen_app, inbox, session)
    await citizen.post(f"/confirm/{links['confirm']}")
    url = "/campaigns/hospital/RU-TVE"
    same_address = {
        "full_name": "Мария Петрова",
        "email": "MARIA@example.org",
        "locality": "Тверь",
        "consent": "yes",
    }
    await session.rollback()
    deputy_ids = [str(i) for i in await session.scalars(select(Letter.deputy_id))]
    other_address = {**same_address, "email": "nobody@example.org"}
    # The form tells whoever types an address nothing of what its owner did: the same pages,
    # whether the address wrote to these deputies or not.
    pages = []
    for data in (same_address, other_address):
        preview = await citizen.post(
            url + "/preview", data={**data, "deputy": deputy_ids}, headers={"accept-language": "en"}
        )
        assert preview.status_code == 200
        assert preview.text.count(" checked") == 3 + 1  # the deputies and the consent
        assert "already" not in preview.text
        pages.append(preview.text.replace(data["email"], "ADDRESS"))
        submitted = await citizen.post(
            url + "/submit", data={**data, "deputy": deputy_ids}, headers={"accept-language": "en"}
        )
        assert submitted.status_code == 303
        assert submitted.headers["location"] == "/check-email"
    assert pages[0] == pages[1]
    # Only the mailbox's owner learns it, by following the link.
    await mail_sent(citizen_app)
    repeated = max(
        i for i, m in enumerate(inbox.messages) if str(m["To"]).lower() == "maria@example.org"
    )
    token = inbox.links(repeated)["confirm"]
    again = await citizen.post(f"/confirm/{token}", headers={"accept-language": "en"})
    assert again.status_code == 409
    assert "No new letter" in again.text
    assert "You had already written to these deputies in this campaign" in again.text
    await session.rollback()
    assert await session.scalar(select(func.count(Letter.id))) == 3


async def test_confirmation_email_in_the_citizens_language(
    citizen: httpx.AsyncClient, citizen_app: FastAPI, inbox: Inbox, session: AsyncSession
) -> None:
    world = await make_world(session)
    url = f"/campaigns/{world.campaign.slug}/{world.region.code}/submit"
    await citizen.post(url, data=form(world, email="ru@example.org"))
    await citizen.post(
        url, data=form(world, email="en@example.org"), headers={"accept-language": "en"}
    )
    await mail_sent(citizen_app)
    russian, english = inbox.messages
    assert russian["Subject"] == "Подтвердите ваши письма депутатам"
    assert english["Subject"] == "Confirm your letters to deputies"
    body = english.get_body(("plain",))
    assert body is not None
    assert "within 24 hours" in body.get_content()
    assert "Мария" not in str(english)  # the name is not in the e-mail to the citizen
