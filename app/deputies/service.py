"""Queries over the deputies registry."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.deputies.models import Deputy, Legislature, Region
from app.errors import NotFound


def _surname_key(deputy: Deputy) -> tuple[str, str, str, int]:
    # Database collations differ (SQLite compares bytes); sort the same way everywhere, ё as е.
    def fold(text: str) -> str:
        return text.casefold().replace("ё", "е")

    return (fold(deputy.surname), fold(deputy.first_name), fold(deputy.patronymic), deputy.id)


async def list_regions(session: AsyncSession) -> list[tuple[Region, int]]:
    """Every region with its legislatures and the number of its active deputies, by code."""
    counted = await session.execute(
        select(Legislature.region_id, func.count(Deputy.id))
        .join(Deputy, Deputy.legislature_id == Legislature.id)
        .where(Deputy.is_active)
        .group_by(Legislature.region_id)
    )
    counts: dict[int, int] = dict(counted.all())
    regions = await session.scalars(
        select(Region).options(selectinload(Region.legislatures)).order_by(Region.code)
    )
    return [(region, counts.get(region.id, 0)) for region in regions]


async def get_region(session: AsyncSession, *, code: str) -> Region:
    """The region with this ISO 3166-2 code, with its legislatures; NotFound otherwise."""
    region = await session.scalar(
        select(Region).where(Region.code == code.upper()).options(selectinload(Region.legislatures))
    )
    if region is None:
        raise NotFound("No region with code {code!r}.", field="code", code=code)
    return region


# Deputies are shown with their legislature and region: load both in the same query.
WITH_LEGISLATURE = joinedload(Deputy.legislature).joinedload(Legislature.region)


async def list_active_deputies(session: AsyncSession, *, region: Region) -> list[Deputy]:
    """The region's active deputies in every legislature, sorted by surname."""
    deputies: Sequence[Deputy] = (
        await session.scalars(
            select(Deputy)
            .join(Legislature)
            .where(Legislature.region_id == region.id, Deputy.is_active)
            .options(WITH_LEGISLATURE)
        )
    ).all()
    return sorted(deputies, key=_surname_key)


async def get_deputy(session: AsyncSession, *, deputy_id: int) -> Deputy:
    """One deputy, active or not, with legislature and region; NotFound otherwise."""
    deputy = await session.scalar(
        select(Deputy).where(Deputy.id == deputy_id).options(WITH_LEGISLATURE)
    )
    if deputy is None:
        raise NotFound("No deputy with id {id}.", field="deputy_id", id=deputy_id)
    return deputy


async def get_deputies(session: AsyncSession, *, ids: Sequence[int]) -> list[Deputy]:
    """The deputies with these ids that exist, with legislature and region loaded."""
    if not ids:
        return []
    result = await session.scalars(
        select(Deputy).where(Deputy.id.in_(ids)).options(WITH_LEGISLATURE)
    )
    return list(result)
