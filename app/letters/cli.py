"""`appeals citizens ...`: maintenance of the citizen flow."""

from __future__ import annotations

import asyncio

import typer

from app.config import get_settings
from app.db import create_sessionmaker, engine_for
from app.letters.tasks import purge_once

citizens_app = typer.Typer(help="The citizen flow: pending submissions.", no_args_is_help=True)


@citizens_app.command("purge")
def purge() -> None:
    """Delete unconfirmed submissions past their expiry and old ones past the retention period."""
    settings = get_settings()

    async def main() -> int:
        engine = engine_for(settings)
        try:
            return await purge_once(create_sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    typer.echo(f"{asyncio.run(main())} submissions deleted")
