"""`appeals worker` and `appeals delivery ...`: sending, pauses, progress, the purge."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import create_sessionmaker, engine_for
from app.delivery import service
from app.delivery.worker import Worker
from app.letters.mailer import ConfirmationSender

delivery_app = typer.Typer(
    help="Delivery: pauses, progress, retention purge.", no_args_is_help=True
)
T = TypeVar("T")


def worker(
    once: bool = typer.Option(False, "--once", help="Send what is due now, then exit."),
) -> None:
    """Send queued letters until stopped (SIGINT/SIGTERM finish the batch in hand)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if settings.environment == "production" and not settings.relay_configured:
        typer.echo(
            "APPEALS_SMTP_HOST is not set: in production a worker needs a relay "
            "(without one, letters would only go to the local sink).",
            err=True,
        )
        raise typer.Exit(1)

    async def main() -> str:
        instance = Worker(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, instance.stop)
        # The citizens' confirmation e-mails (the outbox) leave from here too.
        confirmations = ConfirmationSender(settings, create_sessionmaker(instance.engine))
        sender = None
        if not once:
            sender = asyncio.create_task(confirmations.run(instance.stopping))
        try:
            if once:
                await confirmations.send_due()
            summary = await instance.run(once=once)
        finally:
            instance.stop()
            if sender is not None:
                await sender
            await confirmations.aclose()
            await instance.close()
        return summary.describe()

    typer.echo(asyncio.run(main()))


async def _in_session(run: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = engine_for(get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await run(session)
    finally:
        await engine.dispose()


@delivery_app.command("pause-campaign")
def pause_campaign(
    campaign_id: int = typer.Argument(..., help="Campaign id."),
    reason: str = typer.Option("", help="Why (shown to staff)."),
) -> None:
    """Stop sending the campaign's letters until resumed."""
    asyncio.run(
        _in_session(lambda s: service.pause_campaign(s, campaign_id=campaign_id, reason=reason))
    )
    typer.echo(f"campaign {campaign_id} paused")


@delivery_app.command("resume-campaign")
def resume_campaign(campaign_id: int = typer.Argument(..., help="Campaign id.")) -> None:
    """Resume sending the campaign's letters."""
    was = asyncio.run(_in_session(lambda s: service.resume_campaign(s, campaign_id=campaign_id)))
    typer.echo(
        f"campaign {campaign_id} resumed" if was else f"campaign {campaign_id} was not paused"
    )


@delivery_app.command("progress")
def progress(campaign_id: int = typer.Argument(..., help="Campaign id.")) -> None:
    """The campaign's letters by status, and whether delivery is finished."""
    result = asyncio.run(
        _in_session(lambda s: service.campaign_progress(s, campaign_id=campaign_id))
    )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "no letters"
    state = "finished" if result.finished else "paused" if result.paused else "in progress"
    typer.echo(f"campaign {campaign_id}: {counts}; {state}")


@delivery_app.command("purge")
def purge() -> None:
    """Erase senders' data and letter bodies past the retention period now."""
    settings = get_settings()
    n = asyncio.run(_in_session(lambda s: service.purge(s, settings=settings)))
    typer.echo(f"purged {n} letters (retention {settings.retention_days:g} days)")


@delivery_app.command("pauses")
def pauses() -> None:
    """Pauses in force: campaigns (staff), domains and relay (breaker)."""
    rows = asyncio.run(_in_session(service.list_pauses))
    for pause in rows:
        until = pause.until.isoformat() if pause.until else "until resumed"
        typer.echo(f"{pause.kind} {pause.key} {until} {pause.reason}")
    if not rows:
        typer.echo("no pauses")
