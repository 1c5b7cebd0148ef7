"""A small, known set of letters for statistics tests: two campaigns, two regions, three
deputies on two mail domains, letters in every status on two UTC days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign, CampaignStatus
from app.config import Settings
from app.letters.flow import sender_key
from app.letters.models import Letter, LetterStatus
from tests.factories import (
    create_campaign,
    create_deputy,
    create_legislature,
    create_letter,
    create_region,
)

DAY1 = dt.date(2026, 11, 20)
DAY2 = dt.date(2026, 11, 21)
SENDER_NAME = "Мария Секретова"
SENDER_EMAIL = "maria.secret@example.com"


@dataclass
class Seeded:
    main: Campaign
    other: Campaign
    draft: Campaign
    # status -> count, over everything seeded
    totals: dict[str, int]


# The sender of each letter in PLAN's order: a sender writes to a deputy once per campaign (a
# database constraint), so repeated senders go to other deputies. The main campaign's 9 letters
# come from 5 senders, the other campaign's 3 from 3 (one of them, 5, wrote in both).
SENDERS = [1, 2, 3, 4, 1, 2, 3, 4, 5, 5, 6, 7]

# (campaign, region, deputy, day, status, how many)
PLAN = [
    ("main", 0, 0, DAY1, LetterStatus.sent, 3),
    ("main", 0, 0, DAY1, LetterStatus.failed, 1),
    ("main", 0, 1, DAY2, LetterStatus.deferred, 2),
    ("main", 1, 2, DAY2, LetterStatus.queued, 2),
    ("main", 1, 2, DAY2, LetterStatus.cancelled, 1),
    ("other", 1, 2, DAY1, LetterStatus.sent, 2),
    ("other", 1, 2, DAY2, LetterStatus.held, 1),
]


async def seed(session: AsyncSession, settings: Settings) -> Seeded:
    main = await create_campaign(session, slug="save-hospital", status=CampaignStatus.published)
    other = await create_campaign(session, slug="clean-river", status=CampaignStatus.closed)
    draft = await create_campaign(session, slug="secret-draft")
    regions = [
        await create_region(session, code="RU-TSA", name_en="Alpha Oblast"),
        await create_region(session, code="RU-TSB", name_en="Beta Oblast"),
    ]
    legislatures = [await create_legislature(session, region=r) for r in regions]
    deputies = [
        await create_deputy(session, legislature=legislatures[0], email="a@duma-a.example.org"),
        await create_deputy(session, legislature=legislatures[0], email="b@duma-a.example.org"),
        await create_deputy(session, legislature=legislatures[1], email="c@duma-b.example.org"),
    ]
    campaigns = {"main": main, "other": other}
    totals: dict[str, int] = {}
    sender = 0
    for name, _region, d, day, status, n in PLAN:
        for _ in range(n):
            email = f"s{SENDERS[sender]}.{SENDER_EMAIL}"
            sender += 1
            letter = await create_letter(
                session,
                settings=settings,
                deputy=deputies[d],
                campaign_id=campaigns[name].id,
                sender_name=SENDER_NAME,
                sender_email=email,
                # As the citizen flow keys them: distinct senders are counted over this key.
                sender_key=sender_key(email, secret=settings.effective_secret_key),
            )
            at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
            await session.execute(
                update(Letter)
                .where(Letter.id == letter.id)
                .values(created_at=at, status=status)
                .execution_options(synchronize_session=False)
            )
            totals[status] = totals.get(status, 0) + 1
    await session.commit()
    return Seeded(main=main, other=other, draft=draft, totals=totals)
