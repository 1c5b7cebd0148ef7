"""A per-process, short-lived snapshot of what every submission and confirmation reads: the open
campaign, the ids of the deputies it writes to in a region, its approved texts, and the deputies
as plain values (bulk.DeputyCard).

A submission stores only a pending request: nothing is created or sent until its link is
confirmed, and the confirmation checks that the campaign is open, its approved versions and the
deputies against the database inside its own write transaction (see confirmation.confirm); a
change of the campaign's title or address rule reaches other processes within `ttl`. So the snapshot
may lag a staff action by at most `ttl` seconds in other processes, and not at all in this one:
every staff action on a campaign, text or version bumps the counter `campaigns_service.generation()`
reads, which empties the snapshot here. Failures (no such campaign, not open) are never kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service as campaigns_service
from app.campaigns.models import Campaign
from app.deputies import service as deputies_service
from app.errors import Conflict
from app.i18n import gettext as _
from app.letters import open_campaigns
from app.letters.bulk import DeputyCard, VersionText


@dataclass(frozen=True, slots=True)
class OpenCampaign:
    """What a submission needs of an open campaign (a plain value, safe to share)."""

    id: int
    slug: str
    title: str
    requires_address: bool

    @classmethod
    def of(cls, campaign: Campaign) -> OpenCampaign:
        return cls(campaign.id, campaign.slug, campaign.title, campaign.requires_address)


@dataclass(frozen=True, slots=True)
class CampaignTexts:
    """An open campaign and its approved texts, oldest first (never empty)."""

    campaign: OpenCampaign
    versions: tuple[VersionText, ...]


class IntakeCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._generation = campaigns_service.generation()
        self._campaigns: dict[str, tuple[float, OpenCampaign]] = {}
        self._deputies: dict[tuple[str, str], tuple[float, tuple[int, ...]]] = {}
        self._texts: dict[int, tuple[float, CampaignTexts]] = {}
        self._cards: dict[int, tuple[float, DeputyCard]] = {}

    def _fresh(self) -> float:
        """Now; everything is forgotten first if a staff action happened in this process."""
        if self._generation != campaigns_service.generation():
            self.clear()
            self._generation = campaigns_service.generation()
        return time.monotonic()

    def clear(self) -> None:
        self._campaigns.clear()
        self._deputies.clear()
        self._texts.clear()
        self._cards.clear()

    def held_campaign_and_deputies(
        self, *, slug: str, region_code: str
    ) -> tuple[OpenCampaign, list[int]] | None:
        """What campaign_and_deputies would answer, if the snapshot holds it (no database)."""
        now = self._fresh()
        found = self._campaigns.get(slug)
        ids = self._deputies.get((slug, region_code.upper()))
        if found and ids and found[0] > now and ids[0] > now:
            return found[1], list(ids[1])
        return None

    async def campaign_and_deputies(
        self, session: AsyncSession, *, slug: str, region_code: str
    ) -> tuple[OpenCampaign, list[int]]:
        """The open campaign (NotFound or Gone as open_campaigns.get_open_campaign) and the ids
        of its deputies in the region (none if it does not target the region)."""
        held = self.held_campaign_and_deputies(slug=slug, region_code=region_code)
        if held is not None:
            return held
        now = self._fresh()
        code = region_code.upper()
        campaign = await open_campaigns.get_open_campaign(session, slug=slug)
        deputy_ids = await open_campaigns.campaign_deputy_ids(
            session, campaign=campaign, region_code=code
        )
        snapshot = OpenCampaign.of(campaign)
        if self.ttl > 0:
            self._campaigns[slug] = (now + self.ttl, snapshot)
            self._deputies[(slug, code)] = (now + self.ttl, tuple(deputy_ids))
        return snapshot, deputy_ids

    async def campaign_texts(
        self, session: AsyncSession, *, campaign_id: int, fresh: bool = False
    ) -> CampaignTexts:
        """The open campaign (NotFound or Gone as open_campaigns.get_open_campaign) and its
        approved texts (Conflict if there are none); read from the database when `fresh`."""
        now = self._fresh()
        found = self._texts.get(campaign_id)
        if found and found[0] > now and not fresh:
            return found[1]
        campaign = await open_campaigns.get_open_campaign(
            session, slug=await open_campaigns.campaign_slug(session, campaign_id)
        )
        versions = await campaigns_service.approved_versions(session, campaign_id=campaign_id)
        if not versions:
            raise Conflict(
                _("This campaign has no approved text at the moment."), field="campaign_id"
            )
        texts = CampaignTexts(
            OpenCampaign.of(campaign),
            tuple(VersionText.of(v) for v in versions),
        )
        if self.ttl > 0:
            self._texts[campaign_id] = (now + self.ttl, texts)
        return texts

    async def deputy_cards(
        self, session: AsyncSession, *, ids: Sequence[int], fresh: bool = False
    ) -> dict[int, DeputyCard]:
        """The deputies with these ids that exist, active or not; read from the database when
        `fresh` (and those not seen within `ttl`)."""
        now = self._fresh()
        cards: dict[int, DeputyCard] = {}
        missing = []
        for i in ids:
            found = self._cards.get(i)
            if found and found[0] > now and not fresh:
                cards[i] = found[1]
            else:
                missing.append(i)
        if missing:
            for deputy in await deputies_service.get_deputies(session, ids=missing):
                card = cards[deputy.id] = DeputyCard.of(deputy)
                if self.ttl > 0:
                    self._cards[deputy.id] = (now + self.ttl, card)
        return cards
