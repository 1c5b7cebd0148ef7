"""What a letter takes from its campaign: the approved variant it uses (in turn per deputy), its
subject and body rendered for a deputy and a citizen, and whether that version may still be
sent; and the same rendering as a staff preview for a real deputy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import rendering
from app.campaigns.lifecycle import approved_versions
from app.campaigns.models import AppealVersion, VersionRotation, VersionStatus
from app.campaigns.states import SENDABLE_VERSION_STATUSES
from app.campaigns.texts import get_version
from app.db import utcnow
from app.deputies import service as deputies_service
from app.deputies.models import Deputy
from app.errors import Conflict


async def choose_version(
    session: AsyncSession, *, campaign_id: int, deputy_id: int
) -> AppealVersion:
    """The approved version the next letter to this deputy in this campaign uses.

    Variants come in turn per deputy (a counter per campaign and deputy), so that a deputy gets
    them alternately rather than many byte-identical letters. Conflict if none is approved. With
    a single approved text there is nothing to hand in turn, and the counter stays as it is
    (letters.bulk does the same for a confirmation's letters).
    """
    versions = await approved_versions(session, campaign_id=campaign_id)
    if not versions:
        raise Conflict("This campaign has no approved text at the moment.", field="campaign_id")
    if len(versions) == 1:
        return versions[0]
    values = {"campaign_id": campaign_id, "deputy_id": deputy_id, "counter": 1}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # One atomic statement: concurrent letters to the same deputy each get their own number.
    statement = (
        insert(VersionRotation)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["campaign_id", "deputy_id"],
            set_={"counter": VersionRotation.counter + 1},
        )
        .returning(VersionRotation.counter)
    )
    counter: int = (await session.execute(statement)).scalar_one()
    return versions[(counter - 1) % len(versions)]


def render_letter(
    version: AppealVersion,
    *,
    deputy: Deputy,
    citizen: Mapping[str, str],
    date: dt.date,
) -> tuple[str, str]:
    """A letter's (subject, body) from a version, for a deputy (legislature and region loaded)
    and a citizen (full_name, locality and, in campaigns that need it, address)."""
    return rendering.render(
        version.subject,
        version.body,
        deputy=rendering.deputy_values(deputy),
        citizen=dict(citizen),
        date=date,
        # The campaign's rule was enforced when the version was saved.
        address_allowed=True,
    )


async def version_is_sendable(session: AsyncSession, *, version_id: int) -> bool:
    """Whether letters of this version may be sent now (the send loop asks before each one)."""
    status = await session.scalar(
        select(AppealVersion.status).where(AppealVersion.id == version_id)
    )
    return status is not None and VersionStatus(status) in SENDABLE_VERSION_STATUSES


async def preview(
    session: AsyncSession, *, version_id: int, deputy_id: int, date: dt.date | None = None
) -> tuple[AppealVersion, Deputy, str, str]:
    """A version rendered for a real deputy with sample citizen data."""
    version = await get_version(session, version_id=version_id)
    deputy = await deputies_service.get_deputy(session, deputy_id=deputy_id)
    citizen = dict(rendering.SAMPLE_CITIZEN)
    if not version.text.campaign.requires_address:
        citizen.pop("address")
    subject, body = render_letter(
        version, deputy=deputy, citizen=citizen, date=date or utcnow().date()
    )
    return version, deputy, subject, body
