"""The one gate for text at every door: a NUL, another control character and text that is not
valid Unicode, sent into each input of each route, answer 422 naming the field (or what
authentication answers first), never a 500, on SQLite and PostgreSQL alike (issue 16, point 5:
on PostgreSQL a NUL in a campaign's region code, an API token's name or `?campaign=` on the
statistics answered 500, from asyncpg).

The inputs are found, not listed: the JSON API's from the OpenAPI document (path and query
parameters, the properties of JSON bodies), the pages' from their routes' declared path, query and
form parameters. Only the forms that a route reads itself are listed here, and a route of any
other kind fails the test until it is: a new route is covered the day it is added.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, get_args, get_origin
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Mount, Route

from app.campaigns.models import AppealText, AppealVersion, Campaign, CampaignStatus, VersionStatus
from app.config import Settings
from app.letters.submissions import Submission
from app.main import create_app
from app.staff.models import ApiToken, Role, StaffMember
from app.staff.web import LOGIN_CSRF_COOKIE
from tests.factories import (
    create_api_token,
    create_campaign,
    create_deputy,
    create_legislature,
    create_region,
    create_staff,
    create_version,
)
from tests.staff.auth import csrf_from, login_ok

# What arrives in a URL or a form is bytes: the third is a lone surrogate as UTF-8 would carry it,
# which the server decodes to U+FFFD. JSON carries the lone surrogate itself ("\ud800").
URL_VALUES = {"NUL": b"a\x00b", "ESC": b"a\x1bb", "a surrogate": b"a\xed\xa0\x80b"}
JSON_VALUES = {"NUL": "a\x00b", "ESC": "a\x1bb", "a lone surrogate": "a\ud800b"}

# Forms that their route reads itself (no declared parameters): their fields, by route name.
CITIZEN_FORM = ("full_name", "email", "locality", "postal_address", "deputy", "consent",
                "reply_to")  # fmt: skip
READ_BY_THE_ROUTE = {
    "campaign_submit": (*CITIZEN_FORM, "website", "altcha"),  # the preview sends nothing
    "campaign_preview": CITIZEN_FORM,
    "status_cancel": ("letter", "all"),
    "status_erase": ("sure",),
}
# Routes of other kinds, which take no input.
NO_INPUT = {"openapi", "static", "static-offline-docs"}
# The honeypot: whatever it holds, a bot that fills it is told "done" and nothing is kept.
HONEYPOT = ("campaign_submit", "website")
# The error of a field shown under another name on the citizen's form.
SHOWN_AS = {"deputy": "deputies"}
PUBLIC_STAFF_PATHS = ("/staff/login",)


@dataclass(frozen=True)
class Door:
    route: str  # the route's name, or the OpenAPI operation's id
    method: str
    path: str  # the path template, e.g. /api/v1/campaigns/{slug}/submissions
    where: str  # path, query, form or json
    name: str
    array: bool = False

    @property
    def staff(self) -> bool:
        return (
            self.path.startswith(("/staff", "/api/v1/staff"))
            and self.path not in PUBLIC_STAFF_PATHS
        )

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")


@dataclass
class World:
    path: dict[str, Any]  # path parameters, by name
    form: dict[str, str | None]  # a valid value of each form field (None: left out), by name
    body: dict[str, Any]  # a valid value of JSON properties, by name (each required one)
    admin_email: str
    bearer: str


# --- finding the doors -------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref followed and an Optional (anyOf with null) unwrapped."""
    while True:
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema:
            options = [s for s in schema["anyOf"] if s.get("type") != "null"]
            schema = options[0]
        else:
            return schema


def api_doors(doc: dict[str, Any]) -> Iterator[tuple[Door, dict[str, Any] | None]]:
    """Each input of each operation of the OpenAPI document, with its JSON body's schema."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            route = operation["operationId"]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            schema = _resolve(body["schema"], doc) if body else None
            for parameter in operation.get("parameters", []):
                door = Door(route, method.upper(), path, parameter["in"], parameter["name"])
                yield door, schema
            for name, prop in (schema or {}).get("properties", {}).items():
                array = _resolve(prop, doc).get("type") == "array"
                yield Door(route, method.upper(), path, "json", name, array), schema


def _params(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    for where, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("form", dependant.body_params),
    ):
        for field in fields:
            yield where, field
    for sub in dependant.dependencies:
        yield from _params(sub)


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(get_origin(arg) is list for arg in get_args(annotation))


def page_doors(app: FastAPI) -> Iterator[Door]:
    """Each input of each route outside the OpenAPI document: pages and their forms."""
    for context in iter_route_contexts(app.router.routes):
        route, name, path = context.original_route, str(context.name), str(context.path)
        if isinstance(route, APIRoute):
            if context.include_in_schema:
                continue  # in the OpenAPI document
            for method in sorted(context.methods or ()):
                for where, field in _params(route.dependant):
                    array = where == "form" and _is_list(field.field_info.annotation)
                    yield Door(name, method, path, where, field.alias, array)
                for field_name in READ_BY_THE_ROUTE.get(name, ()):
                    yield Door(name, method, path, "form", field_name)
        elif isinstance(route, Route) and name in READ_BY_THE_ROUTE:
            for method in sorted(route.methods or ()):
                for where, param in (("path", p) for p in route.param_convertors):
                    yield Door(name, method, path, where, param)
                for field_name in READ_BY_THE_ROUTE[name]:
                    yield Door(name, method, path, "form", field_name)
        else:
            assert isinstance(route, Route | Mount), route
            assert name in NO_INPUT, f"route {name} ({path}): say here which inputs it takes"


# --- the world the requests are made in --------------------------------------------------------


@pytest.fixture
async def app(database_url: str, sessionmaker: Any) -> AsyncIterator[FastAPI]:
    settings = Settings(
        environment="test",
        database_url=database_url,
        secret_key="t" * 40,
        public_url="http://testserver",
        limit_submit_per_address="100000/minute",
        limit_submit_per_net24="100000/minute",
        limit_submit_per_net16="100000/minute",
        limit_submit_per_email="100000/minute",
        limit_links_per_address="100000/minute",
        altcha=True,  # so that the form reads its proof of work too
    )
    app = create_app(settings)
    yield app
    await app.state.rate_limiter.aclose()
    await app.state.engine.dispose()


async def _world(session: AsyncSession) -> World:
    region = await create_region(session, code="RU-TVE", name_ru="Тверская область")
    legislature = await create_legislature(session, region=region)
    deputy = await create_deputy(session, legislature=legislature)
    admin = await create_staff(
        session, Role.admin, Role.editor, Role.lawyer, Role.analyst, email="admin@example.org"
    )
    bearer = await create_api_token(session, admin)
    campaign = await create_campaign(
        session,
        slug="hospital",
        status=CampaignStatus.published,
        author=admin,
        requires_address=True,  # so that the form reads the postal address too
    )
    version = await create_version(
        session, campaign=campaign, author=admin, status=VersionStatus.approved
    )
    token_id = await session.scalar(select(ApiToken.id))
    await session.commit()
    path = {
        "slug": "hospital", "code": "RU-TVE", "token": "no-such-token", "language": "en",
        "deputy_id": deputy.id, "staff_id": admin.id, "token_id": token_id,
        "campaign_id": campaign.id, "text_id": version.text_id, "version_id": version.id,
        "decision": "release", "message_id": 1, "fmt": "csv", "name": "days",
    }  # fmt: skip
    # Valid values of the other fields of a form or a JSON body, so that only one is hostile.
    form = {
        "full_name": "Мария Петрова", "email": "nobody@example.org", "locality": "Тверь",
        "postal_address": "ул. Советская, 1", "deputy": str(deputy.id), "consent": "yes",
        "reply_to": "yes", "website": "", "altcha": "", "letter": "1", "all": None,
        "sure": "yes", "password": "correct-horse-battery-staple-2", "csrf_token": "",
        "code": "123456", "next": "/staff", "roles": "editor", "is_active": "true",
        "slug": "another-campaign", "title": "Кампания", "description": "Описание",
        "all_regions": None, "region_codes": "RU-TVE", "legislature_level": "regional",
        "requires_address": "false", "opens_at": "", "closes_at": "", "status": "paused",
        "name": "Название", "subject": "Тема", "body": "Текст", "comment": "Хорошо",
    }  # fmt: skip
    body = {
        "region_code": "RU-TVE", "deputy_ids": [deputy.id], "full_name": "Мария Петрова",
        "email": "nobody@example.org", "locality": "Тверь", "consent": True, "token": "x",
        "slug": "another-campaign", "title": "Кампания", "status": "paused", "name": "Название",
        "subject": "Тема", "body": "Текст", "comment": "Хорошо", "roles": ["editor"],
        "password": "correct-horse-battery-staple-2", "all_regions": False,
        "region_codes": ["RU-TVE"],
    }  # fmt: skip
    return World(path, form, body, admin.email, bearer)


def _quoted(value: object) -> str:
    return quote(str(value), safe="")


def _request(
    door: Door,
    world: World,
    hostile: bytes | str,
    *,
    schema: dict[str, Any] | None,
    form: tuple[str, ...],
) -> tuple[str, bytes | None, dict[str, str]]:
    """The URL, body and headers of a request whose one input `door` holds `hostile`."""
    bad = quote(hostile, safe="") if isinstance(hostile, bytes) else ""
    path = re.sub(
        r"\{(\w+)\}",
        lambda m: bad if door.where == "path" and m[1] == door.name else _quoted(world.path[m[1]]),
        door.path,
    )
    if door.where == "query":
        path += f"?{door.name}={bad}"
    headers: dict[str, str] = {}
    body: bytes | None = None
    if door.where == "form":
        fields = [f"{door.name}={bad}"]
        fields += [
            f"{name}={_quoted(world.form[name])}"
            for name in form
            if name != door.name and world.form[name] is not None
        ]
        body = "&".join(fields).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif door.where == "json" or schema is not None:
        values: dict[str, Any] = {}
        required = (schema or {}).get("required", [])
        for name in (schema or {}).get("properties", {}):
            if name in world.body or name in required:
                values[name] = world.body[name]
        if door.where == "json":
            values[door.name] = [hostile] if door.array else hostile
        body = json.dumps(values).encode()  # ASCII: a lone surrogate travels as \ud800
        headers["content-type"] = "application/json"
    return path, body, headers


def _names_the_field(response: httpx.Response, door: Door) -> bool:
    name = SHOWN_AS.get(door.name, door.name) if door.route in READ_BY_THE_ROUTE else door.name
    if response.headers.get("content-type", "").startswith("application/json"):
        fields = [d["field"] for d in response.json().get("details", [])]
        return any(f == name or f.startswith(f"{name}.") for f in fields)
    page = response.text
    return (
        f'id="{name}-error"' in page
        or re.search(rf"<strong>{re.escape(name)}(\.\d+)?</strong>", page) is not None
        or re.search(rf"\b{re.escape(name)}(\.\d+)?: ", page) is not None
    )


def _expected(door: Door, who: str) -> str:
    authenticated = who == "admin" or (who == "bearer" and door.api)
    if door.staff and not authenticated:
        return "login"
    if (door.route, door.name) == HONEYPOT:
        return "done"
    return "refused"


def _as_expected(response: httpx.Response, door: Door, expected: str) -> bool:
    status, location = response.status_code, response.headers.get("location", "")
    if expected == "login":  # the API's 401, or a page's way to the login form
        return status == 401 or (status == 303 and location.startswith("/staff/login"))
    if expected == "done":
        return status == 303 and location == "/check-email"
    return status == 422 and _names_the_field(response, door)


async def test_every_input_refuses_control_characters_and_broken_text(
    app: FastAPI, session: AsyncSession
) -> None:
    world = await _world(session)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    base = "http://testserver"
    async with (
        httpx.AsyncClient(transport=transport, base_url=base) as anonymous,
        httpx.AsyncClient(transport=transport, base_url=base) as admin,
    ):
        csrf = await login_ok(admin, world.admin_email)
        # Each client gets the login form's double-submit cookie, with the same token.
        login_csrf = csrf_from((await anonymous.get("/staff/login")).text)
        admin.cookies.set(LOGIN_CSRF_COOKIE, login_csrf)
        world.form["csrf_token"] = login_csrf
        doc = (await anonymous.get("/openapi.json")).json()
        doors = list(api_doors(doc)) + [(door, None) for door in page_doors(app)]
        forms: dict[tuple[str, str], tuple[str, ...]] = {}
        for door, _ in doors:
            if door.where == "form":
                key = (door.method, door.path)
                forms[key] = (*forms.get(key, ()), door.name)
        assert len({d.route for d, _ in doors}) > 60  # the test found the routes
        failures: list[str] = []
        answered = 0
        for door, schema in doors:
            values: dict[str, bytes | str] = dict(
                JSON_VALUES if door.where == "json" else URL_VALUES
            )
            for who in ("anonymous", "admin", "bearer"):
                if who == "bearer" and not door.api:
                    continue
                for label, hostile in values.items():
                    url, body, headers = _request(
                        door,
                        world,
                        hostile,
                        schema=schema,
                        form=forms.get((door.method, door.path), ()),
                    )
                    if who == "admin":
                        headers["X-CSRF-Token"] = csrf
                    if who == "bearer":
                        headers["Authorization"] = f"Bearer {world.bearer}"
                    client = admin if who == "admin" else anonymous
                    response = await client.request(door.method, url, content=body, headers=headers)
                    answered += 1
                    expected = _expected(door, who)
                    if not _as_expected(response, door, expected):
                        failures.append(
                            f"{door.method} {door.path} {door.where}:{door.name} {label} as "
                            f"{who}: {response.status_code} {response.text[:150]!r}"
                        )
                    if expected == "login":
                        break  # authentication answers before any input is read
        assert not failures, f"{len(failures)} of {answered}:\n" + "\n".join(failures)
    # Nothing was written.
    await session.rollback()
    for model, count in (
        (Campaign, 1), (AppealText, 1), (AppealVersion, 1), (StaffMember, 1), (ApiToken, 1),
        (Submission, 0),
    ):  # fmt: skip
        assert await session.scalar(select(func.count()).select_from(model)) == count, model
