"""The rows of an export: the finest aggregates of the counters (day, campaign, region,
legislature, deputy, recipient domain: letters by status), read in batches. The writers that turn
them into CSV, JSON or XLSX are app.stats.export's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import String, cast, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign
from app.deputies.models import Deputy, Legislature, Region
from app.stats.filters import Scope, where
from app.stats.models import DeputyDayCount
from app.stats.schemas import STATUSES

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
        .where(*where(m, scope))
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
