"""Statistics queries. Counts come from the trigger-kept counter tables (app.stats.models), never
from scanning letters, except the distinct senders, which need the letters themselves.

Days are UTC days of a letter's creation. Services flush at most; callers own the transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.campaigns.models import Campaign, CampaignStatus
from app.deputies.models import Deputy, Legislature, Region
from app.errors import InvalidInput, NotFound
from app.letters.models import Letter
from app.stats.models import CampaignDayCount, DayCount, DeputyCount, DeputyDayCount, TotalCount
from app.stats.schemas import STATUSES, StatsFilter

# Every counter table, with its key (see the 0006 migration, which keeps them).
COUNTERS: tuple[Any, ...] = (DayCount, DeputyDayCount, TotalCount, CampaignDayCount, DeputyCount)

CounterModel = Any  # one of COUNTERS

# How long the public counter may be stale: the home page must not query on every visit.
PUBLIC_TTL_SECONDS = 30.0
_public_cache: dict[tuple[str, int | None], tuple[float, int]] = {}

# Counter rows fetched at a time by the export.
FETCH = 2_000

EXPORT_COLUMNS: tuple[str, ...] = (
    "day",
    "campaign",
    "region",
    "legislature",
    "deputy_id",
    "deputy",
    "recipient_domain",
    *STATUSES,
    "total",
)


@dataclass(frozen=True)
class Scope:
    """A filter whose campaign and region were found in the database."""

    filter: StatsFilter
    campaign_id: int | None = None
    region_id: int | None = None


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


# --- filters -----------------------------------------------------------------------------------


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


def _where(model: CounterModel, scope: Scope) -> list[ColumnElement[bool]]:
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


def _dated(scope: Scope) -> bool:
    return scope.filter.since is not None or scope.filter.until is not None


def _by_legislature(scope: Scope) -> CounterModel:
    """The smallest table that answers by campaign, legislature and domain under the filter."""
    return DayCount if _dated(scope) else TotalCount


def _pivot(model: CounterModel) -> list[Any]:
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


def _counts(row: Sequence[Any], offset: int) -> dict[str, int]:
    return {s: int(row[offset + i] or 0) for i, s in enumerate(STATUSES)}


# --- totals ------------------------------------------------------------------------------------


async def totals(session: AsyncSession, *, scope: Scope) -> dict[str, int]:
    """Letters by status (every status present, zero if none)."""
    model = _by_legislature(scope)
    row = (await session.execute(select(*_pivot(model)).where(*_where(model, scope)))).one()
    return _counts(row, 0)


async def by_campaign(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by campaign and status, with each campaign's distinct senders."""
    m = _by_legislature(scope)
    rows = (
        await session.execute(
            select(m.campaign_id, Campaign.slug, Campaign.title, *_pivot(m))
            .outerjoin(Campaign, Campaign.id == m.campaign_id)
            .where(*_where(m, scope))
            .group_by(m.campaign_id, Campaign.slug, Campaign.title)
            .order_by(m.campaign_id)
        )
    ).all()
    senders = await distinct_senders(session, scope=scope)
    return [
        Counts(
            key=row[1] or f"#{row[0]}",
            label=row[2] or f"#{row[0]}",
            counts=_counts(row, 3),
            senders=senders.get(row[0], 0),
        )
        for row in rows
    ]


async def by_region(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by region (of the deputy's legislature) and status, by region code."""
    m = _by_legislature(scope)
    rows = (
        await session.execute(
            select(Region.code, Region.name_ru, Region.name_en, *_pivot(m))
            .select_from(m)
            .join(Legislature, Legislature.id == m.legislature_id)
            .join(Region, Region.id == Legislature.region_id)
            .where(*_where(m, scope))
            .group_by(Region.code, Region.name_ru, Region.name_en)
            .order_by(Region.code)
        )
    ).all()
    return [Counts(key=r[0], label=r[1], label_en=r[2], counts=_counts(r, 3)) for r in rows]


async def by_legislature(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by legislature and status, by legislature code."""
    m = _by_legislature(scope)
    rows = (
        await session.execute(
            select(Legislature.code, Legislature.name_ru, Legislature.name_en, *_pivot(m))
            .select_from(m)
            .join(Legislature, Legislature.id == m.legislature_id)
            .where(*_where(m, scope))
            .group_by(Legislature.code, Legislature.name_ru, Legislature.name_en)
            .order_by(Legislature.code)
        )
    ).all()
    return [Counts(key=r[0], label=r[1], label_en=r[2], counts=_counts(r, 3)) for r in rows]


async def by_day(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by UTC day of creation and status, oldest first (days without letters absent)."""
    m = CampaignDayCount if scope.region_id is None else DayCount
    rows = (
        await session.execute(
            select(m.day, *_pivot(m)).where(*_where(m, scope)).group_by(m.day).order_by(m.day)
        )
    ).all()
    return [
        Counts(key=r[0].isoformat(), label=r[0].isoformat(), counts=_counts(r, 1)) for r in rows
    ]


async def by_domain(session: AsyncSession, *, scope: Scope) -> list[Counts]:
    """Letters by recipient domain and status: delivery health, the busiest domains first."""
    m = _by_legislature(scope)
    rows = (
        await session.execute(
            select(m.recipient_domain, *_pivot(m))
            .where(*_where(m, scope))
            .group_by(m.recipient_domain)
            .order_by(func.sum(m.n).desc(), m.recipient_domain)
        )
    ).all()
    return [Counts(key=r[0], label=r[0], counts=_counts(r, 1)) for r in rows]


async def top_deputies(session: AsyncSession, *, scope: Scope, limit: int = 20) -> list[Counts]:
    """The deputies who were written to most, with their letters by status."""
    m = DeputyDayCount if _dated(scope) else DeputyCount
    grouped = (
        select(m.deputy_id, *_pivot(m))
        .where(*_where(m, scope))
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
        Counts(key=r[0], label=" ".join(p for p in r[1:4] if p), counts=_counts(r, 4)) for r in rows
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


# --- public counter ----------------------------------------------------------------------------


async def letters_sent(session: AsyncSession, *, campaign_id: int | None = None) -> int:
    """Letters sent, in all or one campaign; cached for PUBLIC_TTL_SECONDS in this process."""
    key = (str(session.get_bind().engine.url), campaign_id)
    now = time.monotonic()
    cached = _public_cache.get(key)
    if cached is not None and now - cached[0] < PUBLIC_TTL_SECONDS:
        return cached[1]
    query = select(func.coalesce(func.sum(TotalCount.n), 0)).where(TotalCount.status == "sent")
    if campaign_id is not None:
        query = query.where(TotalCount.campaign_id == campaign_id)
    value = int(await session.scalar(query) or 0)
    _public_cache[key] = (now, value)
    return value


def clear_public_cache() -> None:
    """Forget cached public counts (tests; after a recount)."""
    _public_cache.clear()


async def public_campaign(session: AsyncSession, *, slug: str) -> Campaign:
    """A campaign the public may see (not a draft); NotFound otherwise."""
    campaign = await session.scalar(
        select(Campaign).where(Campaign.slug == slug, Campaign.status != CampaignStatus.draft)
    )
    if campaign is None:
        raise NotFound("No campaign {slug!r}.", field="campaign", slug=slug)
    return campaign


# --- exports -----------------------------------------------------------------------------------


class _Fallback(dict[int, Any]):
    """A lookup by id that names a missing entry by its id instead of dropping its counts."""

    def __init__(self, missing: Callable[[int], Any]) -> None:
        super().__init__()
        self._missing = missing

    def __missing__(self, key: int) -> Any:
        value = self[key] = self._missing(key)
        return value


async def export_rows(
    session: AsyncSession, *, scope: Scope, batch_size: int = 10_000
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The finest aggregates (day, campaign, region, legislature, deputy, domain: letters by
    status, in EXPORT_COLUMNS' order), oldest day first, in batches of about `batch_size`.

    The counter rows (one per status) are read in key order through a server-side cursor and
    turned into one row per key here, with the registry's names from a lookup read first: no
    GROUP BY, join or sort of wide rows in the database (on 500,000 rows that took 3-7 s of the
    10 s an export may take), and memory bounded by a batch plus the registry.
    """
    m = DeputyDayCount
    campaigns = _Fallback(lambda id: f"#{id}")
    campaigns.update((await session.execute(select(Campaign.id, Campaign.slug))).all())
    registry = (
        select(
            Deputy.id,
            Region.code,
            Legislature.code,
            Deputy.external_id,
            Deputy.surname,
            Deputy.first_name,
            Deputy.patronymic,
        )
        .join(Legislature, Legislature.id == Deputy.legislature_id)
        .join(Region, Region.id == Legislature.region_id)
    )
    if scope.region_id is not None:
        registry = registry.where(Legislature.region_id == scope.region_id)
    deputies = _Fallback(lambda id: (None, None, f"#{id}", None))
    for id, region, legislature, external_id, *names in await session.execute(registry):
        deputies[id] = (region, legislature, external_id, " ".join(p for p in names if p))

    query = (
        # The day as text on both databases: no date parsing per row.
        select(cast(m.day, String), m.campaign_id, m.deputy_id, m.recipient_domain, m.status, m.n)
        .where(*_where(m, scope))
        .order_by(m.day, m.campaign_id, m.deputy_id, m.recipient_domain)
    )
    position = {status: i for i, status in enumerate(STATUSES)}
    others = len(STATUSES)  # a status outside STATUSES counts in the total only
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # Sort the counter rows in memory rather than in temporary files (per transaction).
        await connection.execute(text("SET LOCAL work_mem = '64MB'"))
    # Core, not the ORM, and plain tuples: this loop runs once per counter row.
    # Fetched in small partitions: a partition's rows outlive a few collections of the cyclic GC,
    # and at 10,000 they were promoted to its oldest generation, whose full collections (a scan
    # of every object of the process) then cost about a second over 500,000 rows. 2,000 was the
    # fastest of 1,000, 2,000 and 5,000 on PostgreSQL (fewer round trips, little promoted).
    result = await connection.stream(query.execution_options(yield_per=FETCH))
    batch: list[tuple[Any, ...]] = []
    key: tuple[Any, ...] | None = None
    counts = [0] * (others + 1)
    async for partition in result.partitions():
        for day, campaign, deputy, domain, status, n in partition:
            this = (day, campaign, deputy, domain)
            if this != key:
                if key is not None:
                    batch.append(_export_row(key, counts, campaigns, deputies))
                key = this
                counts = [0] * (others + 1)
            counts[position.get(status, others)] += n
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if key is not None:
        batch.append(_export_row(key, counts, campaigns, deputies))
    if batch:
        yield batch


def _export_row(
    key: tuple[Any, ...], counts: list[int], campaigns: dict[int, Any], deputies: dict[int, Any]
) -> tuple[Any, ...]:
    day, campaign, deputy, domain = key
    return (day, campaigns[campaign], *deputies[deputy], domain, *counts[:-1], sum(counts))


# --- consistency -------------------------------------------------------------------------------


def _day_of(session: AsyncSession) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", Letter.created_at), Date)
    return func.substr(Letter.created_at, 1, 10)


def _letter_columns(session: AsyncSession) -> dict[str, Any]:
    return {
        "campaign_id": Letter.campaign_id,
        "deputy_id": Letter.deputy_id,
        "legislature_id": Deputy.legislature_id,
        "day": _day_of(session),
        "recipient_domain": Letter.recipient_domain,
        "status": Letter.status,
    }


def _key(model: CounterModel) -> list[str]:
    return [c.name for c in model.__table__.primary_key.columns]


async def recount(session: AsyncSession) -> None:
    """Rebuild every counter table from the letters (after a restore, say)."""
    columns = _letter_columns(session)
    for model in COUNTERS:
        key = _key(model)
        values = [columns[c] for c in key]
        await session.execute(delete(model))
        await session.execute(
            insert(model).from_select(
                [*key, "n"],
                select(*values, func.count())
                .select_from(Letter)
                .join(Deputy, Deputy.id == Letter.deputy_id)
                .group_by(*values),
            )
        )
    clear_public_cache()


async def discrepancies(session: AsyncSession) -> list[tuple[Any, ...]]:
    """Where the counters disagree with a count of the letters: (table, key..., counted, kept)."""
    columns = _letter_columns(session)
    problems: list[tuple[Any, ...]] = []
    for model in COUNTERS:
        key = _key(model)
        values = [columns[c] for c in key]
        live = {
            tuple(str(v) for v in row[:-1]): int(row[-1])
            for row in await session.execute(
                select(*values, func.count())
                .select_from(Letter)
                .join(Deputy, Deputy.id == Letter.deputy_id)
                .group_by(*values)
            )
        }
        kept = {
            tuple(str(v) for v in row[:-1]): int(row[-1])
            for row in await session.execute(
                select(*(getattr(model, c) for c in key), model.n).where(model.n != 0)
            )
        }
        for k in sorted(set(live) | set(kept)):
            if live.get(k, 0) != kept.get(k, 0):
                problems.append((model.__tablename__, *k, live.get(k, 0), kept.get(k, 0)))
    return problems
