"""The public counter: letters sent, in all or in one campaign the public may see, cached briefly
in each process so that the home page does not query on every visit."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign, CampaignStatus
from app.errors import NotFound
from app.stats.models import TotalCount

# How long the public counter may be stale: the home page must not query on every visit.
PUBLIC_TTL_SECONDS = 30.0
_public_cache: dict[tuple[str, int | None], tuple[float, int]] = {}


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
