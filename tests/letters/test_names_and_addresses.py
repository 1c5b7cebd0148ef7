"""Names and addresses as a careful registrar takes them, on the form and the JSON API alike, and
the JSON API's strict types (issue 16, point 7: invisible and format characters, a name of three
U+3164 fillers and a 65-character local part were accepted; `"consent": "yes"` or `1`,
`"reply_to": "yes"` and `"deputy_ids": [true]` were taken as true and 1)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.letters.submissions import Submission
from tests.letters.conftest import api_body, form, make_world

NAMES = [
    "Анна\u061cПетрова",  # Arabic letter mark
    "Анна\u2060Петрова",  # word joiner
    "Анна\u2062Петрова",  # invisible times
    "Ан\u00adна Петрова",  # soft hyphen
    "Анна\u180eПетрова",  # Mongolian vowel separator
    "Анна \ufff9Петрова",  # interlinear annotation anchor
    "Анна Петрова\U000e0041\U000e0042",  # tag characters
    "\u3164\u3164\u3164",  # three Hangul fillers: looks empty
    "\u2800\u2800\u2800",  # braille blanks
    "123 456",  # no letter
    "... ---",
]
LONG_LOCAL = "a" * 65 + "@example.org"
LONG_ADDRESS = "a" * 64 + "@" + ".".join(["d" * 62] * 3) + ".org"  # 257 characters
ADDRESSES = [LONG_LOCAL, LONG_ADDRESS, "anna\u200b@example.org", "anna@exam\u00adple.org"]


async def _nothing_stored(session: AsyncSession) -> None:
    await session.rollback()
    assert await session.scalar(select(func.count(Submission.id))) == 0


def _api_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {d["field"] for d in response.json()["details"]}


@pytest.mark.parametrize("name", NAMES)
async def test_a_name_is_refused_with_invisible_characters_or_without_letters(
    citizen: httpx.AsyncClient, session: AsyncSession, name: str
) -> None:
    world = await make_world(session)
    api = await citizen.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, full_name=name)
    )
    assert _api_fields(api) == {"full_name"}
    page = await citizen.post("/campaigns/hospital/RU-TVE/submit", data=form(world, full_name=name))
    assert page.status_code == 422
    assert 'id="full_name-error"' in page.text
    assert 'id="email-error"' not in page.text
    await _nothing_stored(session)


@pytest.mark.parametrize("email", ADDRESSES)
async def test_an_address_is_refused_beyond_a_registrars_limits(
    citizen: httpx.AsyncClient, session: AsyncSession, email: str
) -> None:
    world = await make_world(session)
    api = await citizen.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, email=email)
    )
    assert _api_fields(api) == {"email"}
    page = await citizen.post("/campaigns/hospital/RU-TVE/submit", data=form(world, email=email))
    assert page.status_code == 422
    assert 'id="email-error"' in page.text
    await _nothing_stored(session)


async def test_the_longest_address_a_registrar_takes_is_taken(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    email = "a" * 64 + "@" + ".".join(["d" * 61] * 3) + ".org"  # 254 characters
    response = await citizen.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, email=email)
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"consent": "yes"}, "consent"),
        ({"consent": 1}, "consent"),
        ({"consent": "true"}, "consent"),
        ({"consent": False}, "consent"),
        ({"reply_to": "yes"}, "reply_to"),
        ({"reply_to": 1}, "reply_to"),
        ({"deputy_ids": [True]}, "deputy_ids.0"),
        ({"full_name": 5}, "full_name"),
        ({"language": 1}, "language"),
    ],
)
async def test_the_json_api_takes_strict_types(
    citizen: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    world = await make_world(session)
    response = await citizen.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, **changes)
    )
    assert field in _api_fields(response)
    await _nothing_stored(session)


@pytest.mark.parametrize("kind", [str, float])
async def test_a_deputys_number_is_a_json_integer(
    citizen: httpx.AsyncClient, session: AsyncSession, kind: type
) -> None:
    world = await make_world(session)
    ids = [kind(d.id) for d in world.deputies]
    response = await citizen.post(
        "/api/v1/campaigns/hospital/submissions", json=api_body(world, deputy_ids=ids)
    )
    assert _api_fields(response) == {f"deputy_ids.{i}" for i in range(len(ids))}
    await _nothing_stored(session)


async def test_the_schema_says_consent_is_true_only(citizen: httpx.AsyncClient) -> None:
    schemas = (await citizen.get("/openapi.json")).json()["components"]["schemas"]
    consent = schemas["SubmissionIn"]["properties"]["consent"]
    assert consent["const"] is True
    assert consent["type"] == "boolean"
    assert schemas["SubmissionIn"]["properties"]["region_code"]["pattern"]


async def test_the_form_still_takes_its_strings(
    citizen: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await make_world(session)
    sent = await citizen.post("/campaigns/hospital/RU-TVE/submit", data=form(world, reply_to="yes"))
    assert sent.status_code == 303
    assert sent.headers["location"] == "/check-email"
    odd_box = await citizen.post(
        "/campaigns/hospital/RU-TVE/submit", data=form(world, reply_to="on")
    )
    assert odd_box.status_code == 422
    assert 'id="reply_to-error"' in odd_box.text
