"""The `appeals` command line: one Typer app; each domain adds its commands."""

from __future__ import annotations

import os

import typer

from app import migrate
from app.campaigns.cli import campaigns_app
from app.config import get_settings
from app.delivery.cli import delivery_app
from app.delivery.cli import worker as worker_command
from app.deputies.cli import deputies_app
from app.letters.cli import citizens_app
from app.staff.cli import staff_app
from app.stats.cli import stats_app

app = typer.Typer(
    name="appeals",
    help="Citizens send lawyer-vetted letters to their regional deputies.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(deputies_app, name="deputies")
app.add_typer(staff_app, name="staff")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(delivery_app, name="delivery")
app.add_typer(citizens_app, name="citizens")
app.command("worker")(worker_command)
app.add_typer(stats_app, name="stats")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default from settings)."),
    port: int | None = typer.Option(None, help="Port to listen on (default from settings)."),
    reload: bool = typer.Option(False, help="Restart on code changes (development)."),
) -> None:
    """Start the web service."""
    import uvicorn

    # The app reads its settings itself (in a new process with --reload): where it listens is
    # the base of the links in e-mails when APPEALS_PUBLIC_URL is not set.
    if host:
        os.environ["APPEALS_HOST"] = host
    if port:
        os.environ["APPEALS_PORT"] = str(port)
    get_settings.cache_clear()
    settings = get_settings()
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=reload,
        log_level=settings.log_level,
        # Access logs would record client addresses: senders' personal data.
        access_log=False,
        proxy_headers=False,
        # Nothing says which server and version answer.
        server_header=False,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database up to the latest schema (or REVISION)."""
    migrate.upgrade(revision=revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base.")) -> None:
    """Migrate the database down to REVISION."""
    migrate.downgrade(revision=revision)
    typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's current revision."""
    migrate.current()


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check()
    typer.echo("models and migrations agree")
