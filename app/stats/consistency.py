"""The counters against the letters: a recount that rebuilds every counter table, and a check
that lists where they disagree (the triggers of the 0006 migration keep them in step)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, cast, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deputies.models import Deputy
from app.letters.models import Letter
from app.stats.filters import CounterModel
from app.stats.models import CampaignDayCount, DayCount, DeputyCount, DeputyDayCount, TotalCount
from app.stats.public import clear_public_cache

# Every counter table, with its key (see the 0006 migration, which keeps them).
COUNTERS: tuple[Any, ...] = (DayCount, DeputyDayCount, TotalCount, CampaignDayCount, DeputyCount)


def day_of(session: AsyncSession) -> Any:
    """A letter's UTC day of creation, in SQL, as the counter tables key it."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", Letter.created_at), Date)
    return func.substr(Letter.created_at, 1, 10)


def _letter_columns(session: AsyncSession) -> dict[str, Any]:
    return {
        "campaign_id": Letter.campaign_id,
        "deputy_id": Letter.deputy_id,
        "legislature_id": Deputy.legislature_id,
        "day": day_of(session),
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
