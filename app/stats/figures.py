"""The dashboard's figures: letters by status in all, and by campaign (with distinct senders),
region, legislature, day, recipient domain, and the deputies written to most, under a Scope.

Counts come from the trigger-kept counter tables (app.stats.models), never from scanning letters,
except the distinct senders, which need the letters themselves. Days are UTC days of a letter's
creation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign
from app.deputies.models import Deputy, Legislature, Region
from app.letters.models import Letter
from app.stats.filters import Scope, by_legislature_table, counts_of, dated, pivot, where
from app.stats.models import CampaignDayCount, DayCount, DeputyCount, DeputyDayCount
from app.stats.schemas import STATUSES


@dataclass
class Counts:
    """Letters by status under one key (a campaign, region, day, domain, deputy...)."""

    key: str
    label: str
    counts: dict[str, int] = field(default_factory=dict)
    label_en: str | None = None
    senders: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def rate(self, status: str) -> float:
        """The share of letters in `status`, 0.0 to 1.0."""
        return self.counts.get(status, 0) / self.total if self.total else 0.0


async def totals(session: AsyncSession, *, scope: Scope) -> dict[str, int]:
    """Letters by status (every status present, zero if none)."""
    model = by_legislature_table(scope)
    row = (await session.execute(select(*pivot(model)).where(*where(model, scope)))).one()
    return counts_of(row, 0)


async def by_campaign(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by campaign and status, with each campaign's distinct senders."""
    m = by_legislature_table(scope)
    rows = (
        await session.execute(
            select(m.campaign_id, Campaign.slug, Campaign.title, *pivot(m))
            .outerjoin(Campaign, Campaign.id == m.campaign_id)
            .where(*where(m, scope))
            .group_by(m.campaign_id, Campaign.slug, Campaign.title)
            .order_by(m.campaign_id)
        )
    ).all()
    senders = await distinct_senders(session, scope=scope)
    return [
        Counts(
            key=row[1] or f"#{row[0]}",
            label=row[2] or f"#{row[0]}",
            counts=counts_of(row, 3),
            senders=senders.get(row[0], 0),
        )
        for row in rows
    ]


async def by_region(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by region (of the deputy's legislature) and status, by region code."""
    m = by_legislature_table(scope)
    rows = (
        await session.execute(
            select(Region.code, Region.name_ru, Region.name_en, *pivot(m))
            .select_from(m)
            .join(Legislature, Legislature.id == m.legislature_id)
            .join(Region, Region.id == Legislature.region_id)
            .where(*where(m, scope))
            .group_by(Region.code, Region.name_ru, Region.name_en)
            .order_by(Region.code)
        )
    ).all()
    return [Counts(key=r[0], label=r[1], label_en=r[2], counts=counts_of(r, 3)) for r in rows]


async def by_legislature(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by legislature and status, by legislature code."""
    m = by_legislature_table(scope)
    rows = (
        await session.execute(
            select(Legislature.code, Legislature.name_ru, Legislature.name_en, *pivot(m))
            .select_from(m)
            .join(Legislature, Legislature.id == m.legislature_id)
            .where(*where(m, scope))
            .group_by(Legislature.code, Legislature.name_ru, Legislature.name_en)
            .order_by(Legislature.code)
        )
    ).all()
    return [Counts(key=r[0], label=r[1], label_en=r[2], counts=counts_of(r, 3)) for r in rows]


async def by_day(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by UTC day of creation and status, oldest first (days without letters absent)."""
    m = CampaignDayCount if scope.region_id is None else DayCount
    rows = (
        await session.execute(
            select(m.day, *pivot(m)).where(*where(m, scope)).group_by(m.day).order_by(m.day)
        )
    ).all()
    return [
        Counts(key=r[0].isoformat(), label=r[0].isoformat(), counts=counts_of(r, 1)) for r in rows
    ]


async def by_domain(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by recipient domain and status: delivery health, the busiest domains first."""
    m = by_legislature_table(scope)
    rows = (
        await session.execute(
            select(m.recipient_domain, *pivot(m))
            .where(*where(m, scope))
            .group_by(m.recipient_domain)
            .order_by(func.sum(m.n).desc(), m.recipient_domain)
        )
    ).all()
    return [Counts(key=r[0], label=r[0], counts=counts_of(r, 1)) for r in rows]


async def top_deputies(session: AsyncSession, *, scope: Scope, limit: int = 20) -> list[Counts]:
    """The deputies who were written to most, with their letters by status."""
    m = DeputyDayCount if dated(scope) else DeputyCount
    grouped = (
        select(m.deputy_id, *pivot(m))
        .where(*where(m, scope))
        .group_by(m.deputy_id)
        .order_by(func.sum(m.n).desc(), m.deputy_id)
        .limit(limit)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                Deputy.external_id,
                Deputy.surname,
                Deputy.first_name,
                Deputy.patronymic,
                *(grouped.c[s] for s in STATUSES),
            )
            .join(grouped, grouped.c.deputy_id == Deputy.id)
            .order_by(grouped.c.total.desc(), Deputy.id)
        )
    ).all()
    return [
        Counts(key=r[0], label=" ".join(p for p in r[1:4] if p), counts=counts_of(r, 4))
        for r in rows
    ]


def _sender_identity() -> Any:
    # The citizen flow adds `sender_key` (a keyed hash of the lower-cased e-mail, kept after the
    # purge); until it lands, the e-mail itself, which the purge erases: purged letters then
    # count for no sender. Never a second identity of our own.
    key = getattr(Letter, "sender_key", None)
    return Letter.sender_email if key is None else key


async def distinct_senders(session: AsyncSession, *, scope: Scope) -> dict[int, int]:
    """Distinct senders by campaign id, counted over the letters themselves."""
    sender = _sender_identity()
    # DISTINCT pairs, then a count: PostgreSQL reads the index and hashes, where
    # count(DISTINCT ...) sorts every campaign's senders (three times slower at 1,000,000).
    pairs = select(Letter.campaign_id, sender.label("sender")).where(sender.is_not(None))
    if scope.campaign_id is not None:
        pairs = pairs.where(Letter.campaign_id == scope.campaign_id)
    if scope.filter.since is not None:
        pairs = pairs.where(Letter.created_at >= _midnight(scope.filter.since))
    if scope.filter.until is not None:
        pairs = pairs.where(Letter.created_at < _midnight(scope.filter.until, days=1))
    if scope.region_id is not None:
        pairs = pairs.where(
            Letter.deputy_id.in_(
                select(Deputy.id)
                .join(Legislature, Legislature.id == Deputy.legislature_id)
                .where(Legislature.region_id == scope.region_id)
            )
        )
    distinct_pairs = pairs.distinct().subquery()
    query = select(distinct_pairs.c.campaign_id, func.count()).group_by(
        distinct_pairs.c.campaign_id
    )
    return {int(c): int(n) for c, n in (await session.execute(query)).all()}


def _midnight(day: dt.date, *, days: int = 0) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time(), tzinfo=dt.UTC)
