"""`appeals deputies ...`: import the registry from CSV files."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer
from rich.progress import Progress
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import create_sessionmaker, engine_for
from app.deputies import importer

deputies_app = typer.Typer(
    help="The deputies registry: regions, legislatures, deputies.", no_args_is_help=True
)

ImportFn = Callable[[AsyncSession, bytes], Awaitable[importer.ImportSummary]]


async def _run_import(path: Path, run: ImportFn, *, dry_run: bool) -> importer.ImportSummary:
    engine = engine_for(get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            # One writer at a time on SQLite: take the write lock before reading what to change.
            await session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
            summary = await run(session, path.read_bytes())
            if dry_run:
                await session.rollback()
            return summary
    finally:
        await engine.dispose()


def _import_or_exit(path: Path, run: ImportFn, *, dry_run: bool) -> importer.ImportSummary:
    try:
        return asyncio.run(_run_import(path, run, dry_run=dry_run))
    except importer.ImportFailed as failed:
        for problem in failed.problems:
            typer.echo(problem.format(str(path)), err=True)
        typer.echo(f"{len(failed.problems)} problem(s); nothing was imported.", err=True)
        raise typer.Exit(1) from None
    except IntegrityError:
        # Another import wrote the same rows meanwhile; this one's transaction was rolled back.
        typer.echo(
            "The registry changed during the import; nothing was imported. Run it again.", err=True
        )
        raise typer.Exit(1) from None
    except (OperationalError, DBAPIError, OSError) as exc:
        typer.echo(
            f"The database is unavailable, busy or not migrated ({type(exc).__name__}); nothing "
            "was imported. Check APPEALS_DATABASE_URL and run `appeals db upgrade`.",
            err=True,
        )
        raise typer.Exit(1) from None


PathArg = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV file (UTF-8).")
DryRun = typer.Option(False, "--dry-run", help="Validate and report, write nothing.")


@deputies_app.command("import")
def import_deputies(path: Path = PathArg, dry_run: bool = DryRun) -> None:
    """Validate and upsert deputies from a CSV file (see deputies_data/README.md)."""
    if not sys.stdout.isatty():
        run: ImportFn = lambda s, d: importer.import_deputies(s, d, dry_run=dry_run)  # noqa: E731
        typer.echo(_import_or_exit(path, run, dry_run=dry_run).describe())
        return
    total = max(path.read_bytes().count(b"\n") - 1, 1)
    with Progress(transient=True) as bar:
        task = bar.add_task("validating rows", total=total)
        summary = _import_or_exit(
            path,
            lambda s, d: importer.import_deputies(
                s, d, dry_run=dry_run, progress=lambda n: bar.advance(task, n)
            ),
            dry_run=dry_run,
        )
    typer.echo(summary.describe())


@deputies_app.command("import-legislatures")
def import_legislatures(path: Path = PathArg, dry_run: bool = DryRun) -> None:
    """Validate and upsert regions and their legislatures from a CSV file."""
    run: ImportFn = lambda s, d: importer.import_legislatures(s, d, dry_run=dry_run)  # noqa: E731
    typer.echo(_import_or_exit(path, run, dry_run=dry_run).describe())
