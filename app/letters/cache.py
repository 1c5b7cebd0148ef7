"""A per-process, short-lived snapshot of what every submission reads: the open campaign and the
ids of the deputies it writes to in a region.

A submission stores only a pending request: nothing is created or sent until its link is
confirmed, and the confirmation re-reads the campaign and its approved versions inside its own
write transaction (see flow.confirm). So the snapshot may lag a staff action by at most `ttl`
seconds in other processes, and not at all in this one: every staff action on a campaign, text or
version bumps `campaigns_service.generation`, which empties the snapshot here. Failures (no such
campaign, not open) are never kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service as campaigns_service
from app.letters import flow


@dataclass(frozen=True, slots=True)
class OpenCampaign:
    """What a submission needs of an open campaign (a plain value, safe to share)."""

    id: int
    slug: str
    title: str
    requires_address: bool


class IntakeCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._generation = campaigns_service.generation
        self._campaigns: dict[str, tuple[float, OpenCampaign]] = {}
        self._deputies: dict[tuple[str, str], tuple[float, tuple[int, ...]]] = {}

    def _fresh(self) -> float:
        """Now; everything is forgotten first if a staff action happened in this process."""
        if self._generation != campaigns_service.generation:
            self.clear()
            self._generation = campaigns_service.generation
        return time.monotonic()

    def clear(self) -> None:
        self._campaigns.clear()
        self._deputies.clear()

    async def campaign_and_deputies(
        self, session: AsyncSession, *, slug: str, region_code: str
    ) -> tuple[OpenCampaign, list[int]]:
        """The open campaign (NotFound or Gone as flow.get_open_campaign) and the ids of its
        deputies in the region (none if it does not target the region)."""
        now = self._fresh()
        code = region_code.upper()
        found = self._campaigns.get(slug)
        ids = self._deputies.get((slug, code))
        if found and ids and found[0] > now and ids[0] > now:
            return found[1], list(ids[1])
        campaign = await flow.get_open_campaign(session, slug=slug)
        deputy_ids = await flow.campaign_deputy_ids(session, campaign=campaign, region_code=code)
        snapshot = OpenCampaign(
            campaign.id, campaign.slug, campaign.title, campaign.requires_address
        )
        if self.ttl > 0:
            self._campaigns[slug] = (now + self.ttl, snapshot)
            self._deputies[(slug, code)] = (now + self.ttl, tuple(deputy_ids))
        return snapshot, deputy_ids
