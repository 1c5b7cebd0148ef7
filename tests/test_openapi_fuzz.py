"""schemathesis over every operation of the OpenAPI document, on both databases, through a real
server in a process of its own: no server error, and every answer as the document says (status,
media type, headers, body).

Two passes, bounded so that a database's run stays within about a minute:
- the coverage phase (each parameter's and field's boundaries, missing and wrong values, unexpected
  methods), anonymously for the public operations and, for the staff's, with the token of a member
  who holds every role, so that valid input goes as far as the services;
- random examples (MAX_EXAMPLES per operation), anonymously and with each role's own token.
The seed is fixed, so that a run is repeatable: change SEED to try other examples.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.specs.openapi import checks as openapi_checks
from sqlalchemy.ext.asyncio import AsyncEngine

from app.campaigns.models import CampaignStatus, VersionStatus
from app.config import Settings
from app.db import create_sessionmaker
from app.main import create_app
from app.staff.models import Role, StaffMember
from tests.conftest import empty_database
from tests.factories import (
    create_api_token,
    create_campaign,
    create_deputy,
    create_legislature,
    create_region,
    create_staff,
    create_version,
)
from tests.live_server import serving_process

SEED = 20261127
MAX_EXAMPLES = 6
ROLES = tuple(role.value for role in Role)
IDENTITIES = ("anonymous", *ROLES)
EVERY_ROLE = "every-role"
DOCUMENT = create_app(Settings(environment="test", database_url="sqlite+aiosqlite://")).openapi()


def _schema(phases: dict[str, Any]) -> schemathesis.BaseSchema:
    config = {"seed": SEED, "generation": {"max-examples": MAX_EXAMPLES}, "phases": phases}
    return schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(config))


boundaries = _schema({"fuzzing": {"enabled": False}, "stateful": {"enabled": False}})
examples = _schema({"coverage": {"enabled": False}, "stateful": {"enabled": False}})
# Each answer against the document; a method it does not list (405, every method in Allow); a
# staff operation without its token or with a broken one (401); and input the document says is
# invalid (refused, never taken: the document is not stricter than the app).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
    openapi_checks.ignored_auth,
    openapi_checks.negative_data_rejection,
]
Case = schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]
HYPOTHESIS = hypothesis.settings(
    deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck)
)


@dataclass
class Api:
    base_url: str
    staff: dict[str, int]  # identity -> staff member id
    session: requests.Session  # keeps its connections


@pytest.fixture(scope="module")
async def api(database_url: str, engine: AsyncEngine) -> AsyncIterator[Api]:
    """A served app over a database with a region, its deputies, a published campaign with an
    approved text, a draft with a version under review, and staff: one member of each role and
    one with every role."""
    async with create_sessionmaker(engine)() as session:
        region = await create_region(session, code="RU-TVE")
        legislature = await create_legislature(session, region=region)
        for n in range(3):
            await create_deputy(session, legislature=legislature, surname=f"Депутатов{n}")
        staff = {role: await create_staff(session, Role(role)) for role in ROLES}
        staff[EVERY_ROLE] = await create_staff(session, *Role)
        published = await create_campaign(session, slug="hospital", status=CampaignStatus.published)
        await create_version(
            session, campaign=published, author=staff["editor"], status=VersionStatus.approved
        )
        draft = await create_campaign(session, slug="school", author=staff["editor"])
        await create_version(
            session, campaign=draft, author=staff["editor"], status=VersionStatus.in_review
        )
        await session.commit()
        ids = {identity: member.id for identity, member in staff.items()}
    settings = Settings(environment="test", database_url=database_url, secret_key="f" * 40)
    try:
        async with serving_process(settings) as base_url:
            with requests.Session() as http:
                yield Api(base_url, ids, http)
    finally:
        await empty_database(engine)


@pytest.fixture
async def tokens(api: Api, engine: AsyncEngine) -> dict[str, str]:
    """A fresh token for each member: an earlier case may have revoked one, or changed a member
    (the admin API takes roles away and deactivates)."""
    async with create_sessionmaker(engine)() as session:
        tokens = {}
        for identity, staff_id in api.staff.items():
            member = await session.get_one(StaffMember, staff_id)
            member.roles = set(Role) if identity == EVERY_ROLE else {Role(identity)}
            member.is_active = True
            tokens[identity] = await create_api_token(session, member)
        await session.commit()
    return tokens


def _call(case: Case, api: Api, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    case.call_and_validate(
        base_url=api.base_url, session=api.session, headers=headers, checks=CHECKS
    )


@boundaries.parametrize()
@HYPOTHESIS
def test_boundaries_are_answered_as_documented(
    case: Case, api: Api, tokens: dict[str, str]
) -> None:
    staff_operation = case.operation.path.startswith("/api/v1/staff")
    _call(case, api, tokens[EVERY_ROLE] if staff_operation else None)


@examples.parametrize()
@pytest.mark.parametrize("identity", IDENTITIES)
@HYPOTHESIS
def test_examples_are_answered_as_documented(
    case: Case, identity: str, api: Api, tokens: dict[str, str]
) -> None:
    _call(case, api, tokens.get(identity))
