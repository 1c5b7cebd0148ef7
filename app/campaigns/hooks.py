"""What campaigns' decisions need from the floors above: letters and delivery.

Letters and delivery import campaigns; campaigns never imports them. Yet a withdrawn approval
must hold that version's letters, a lawyer's decision must release or cancel them, and pausing a
campaign must stop its sending, in the same transaction as the decision and whoever takes it
(a page, the API, the command line, the sample). So the decision calls these hooks, and the
floors above register their service modules: app/letters/__init__.py and
app/delivery/__init__.py (see app/hooks.py).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.hooks import Hook


class VersionLetters(Protocol):
    """The letters made from one appeal version (app.letters.service)."""

    async def hold_version_letters(
        self, session: AsyncSession, *, appeal_version_id: int
    ) -> int: ...

    async def release_version_letters(
        self, session: AsyncSession, *, appeal_version_id: int
    ) -> int: ...

    async def cancel_version_letters(
        self, session: AsyncSession, *, appeal_version_id: int
    ) -> int: ...

    async def count_held(self, session: AsyncSession, *, appeal_version_id: int) -> int: ...


class CampaignDelivery(Protocol):
    """The sending of one campaign's letters (app.delivery.service)."""

    async def pause_campaign(
        self, session: AsyncSession, *, campaign_id: int, reason: str = ""
    ) -> None: ...

    async def resume_campaign(self, session: AsyncSession, *, campaign_id: int) -> bool: ...


letters: Hook[VersionLetters] = Hook("the letters of a vetted version", provider="app.letters")
delivery: Hook[CampaignDelivery] = Hook("a campaign's delivery", provider="app.delivery")
