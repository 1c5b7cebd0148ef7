"""A statistics filter resolved against the database (a Scope), and what every query of the
counter tables builds on: the filter's conditions, the table that answers it, a pivot of statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.campaigns.models import Campaign
from app.deputies.models import Deputy, Legislature, Region
from app.errors import InvalidInput
from app.stats.models import DayCount, TotalCount
from app.stats.schemas import STATUSES, StatsFilter

CounterModel = Any  # one of app.stats.consistency.COUNTERS


@dataclass(frozen=True)
class Scope:
    """A filter whose campaign and region were found in the database."""

    filter: StatsFilter
    campaign_id: int | None = None
    region_id: int | None = None


async def resolve(session: AsyncSession, *, filter: StatsFilter) -> Scope:
    """Find the filter's campaign and region; InvalidInput naming the one that does not exist."""
    campaign_id = region_id = None
    if filter.campaign:
        campaign_id = await session.scalar(
            select(Campaign.id).where(Campaign.slug == filter.campaign)
        )
        if campaign_id is None:
            raise InvalidInput("Unknown campaign {slug!r}.", field="campaign", slug=filter.campaign)
    if filter.region:
        region_id = await session.scalar(select(Region.id).where(Region.code == filter.region))
        if region_id is None:
            raise InvalidInput("Unknown region {code!r}.", field="region", code=filter.region)
    return Scope(filter=filter, campaign_id=campaign_id, region_id=region_id)


def where(model: CounterModel, scope: Scope) -> list[ColumnElement[bool]]:
    """The scope's conditions on a counter table (and no rows of zero)."""
    conditions: list[ColumnElement[bool]] = [model.n != 0]
    if scope.campaign_id is not None:
        conditions.append(model.campaign_id == scope.campaign_id)
    if scope.filter.since is not None:
        conditions.append(model.day >= scope.filter.since)
    if scope.filter.until is not None:
        conditions.append(model.day <= scope.filter.until)
    if scope.region_id is not None:
        legislatures = select(Legislature.id).where(Legislature.region_id == scope.region_id)
        if hasattr(model, "legislature_id"):
            conditions.append(model.legislature_id.in_(legislatures))
        else:
            deputies = select(Deputy.id).where(Deputy.legislature_id.in_(legislatures))
            conditions.append(model.deputy_id.in_(deputies))
    return conditions


def dated(scope: Scope) -> bool:
    """Whether the scope has a first or last day (then only the tables by day answer it)."""
    return scope.filter.since is not None or scope.filter.until is not None


def by_legislature_table(scope: Scope) -> CounterModel:
    """The smallest table that answers by campaign, legislature and domain under the filter."""
    return DayCount if dated(scope) else TotalCount


def pivot(model: CounterModel) -> list[Any]:
    """One summed column per status, then the total."""
    # Cast: PostgreSQL sums bigints as numeric (Decimal in Python).
    columns: list[Any] = [
        cast(
            func.coalesce(func.sum(case((model.status == s, model.n), else_=0)), 0), BigInteger
        ).label(s)
        for s in STATUSES
    ]
    columns.append(cast(func.coalesce(func.sum(model.n), 0), BigInteger).label("total"))
    return columns


def counts_of(row: Sequence[Any], offset: int) -> dict[str, int]:
    return {s: int(row[offset + i] or 0) for i, s in enumerate(STATUSES)}
