"""`appeals campaigns ...`: campaigns from the command line."""

from __future__ import annotations

import asyncio

import typer

from app.campaigns.sample import create_sample_campaign
from app.config import get_settings
from app.db import create_sessionmaker, engine_for

campaigns_app = typer.Typer(help="Campaigns and their vetted texts.", no_args_is_help=True)


async def _sample() -> str | None:
    settings = get_settings()
    engine = engine_for(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            campaign = await create_sample_campaign(session, settings=settings)
            await session.commit()
            return campaign.slug if campaign else None
    finally:
        await engine.dispose()


@campaigns_app.command("sample")
def sample() -> None:
    """Create and publish a sample campaign to try the citizen's flow (not in production)."""
    slug = asyncio.run(_sample())
    typer.echo(
        f"sample campaign published: /campaigns/{slug}" if slug else "sample campaign exists"
    )
