"""`appeals stats`: exports of letter aggregates, and a check of the counters against letters."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from app.config import get_settings
from app.db import create_sessionmaker, engine_for
from app.errors import AppError
from app.stats import aggregates, consistency, export, filters
from app.stats.schemas import ExportFormat, parse_filter

stats_app = typer.Typer(help="Letter statistics: exports and counter checks.", no_args_is_help=True)


async def _export(
    fmt: ExportFormat,
    path: Path,
    *,
    campaign: str | None,
    region: str | None,
    since: str | None,
    until: str | None,
    count: Callable[[int], None],
) -> None:
    engine = engine_for(get_settings())
    try:
        async with create_sessionmaker(engine)() as session:
            scope = await filters.resolve(
                session, filter=parse_filter(campaign, region, since, until)
            )
            batches = aggregates.export_rows(session, scope=scope)
            chunks = export.chunks(fmt, batches, count=count)
            with path.open("wb") as file:
                async for chunk in chunks:
                    file.write(chunk)
    finally:
        await engine.dispose()


@stats_app.command("export")
def export_command(
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, xlsx or json.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.", dir_okay=False)],
    campaign: str | None = typer.Option(None, help="Only this campaign (slug)."),
    region: str | None = typer.Option(None, help="Only this region (code, e.g. RU-MOW)."),
    since: str | None = typer.Option(None, help="From this UTC day (YYYY-MM-DD), included."),
    until: str | None = typer.Option(None, help="To this UTC day (YYYY-MM-DD), included."),
) -> None:
    """Export letters by UTC day, campaign, region, legislature, deputy, domain and status.

    Aggregates only: never a sender's data. Written to a temporary file beside OUTPUT and renamed
    when complete, so a failed export leaves no partial file.
    """
    output = output.resolve()
    handle, name = tempfile.mkstemp(prefix=".export-", suffix=f".{format}", dir=output.parent)
    os.close(handle)
    partial = Path(name)
    rows = 0
    progress: Any = None
    task: Any = None
    if sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(), TextColumn("{task.completed:,} rows"), TimeElapsedColumn()
        )
        task = progress.add_task("export", total=None)
        progress.start()

    def count(n: int) -> None:
        nonlocal rows
        rows += n
        if progress is not None:
            progress.update(task, completed=rows)

    # The objects of the imported modules will live as long as the process: out of the cyclic
    # GC's sight, its full collections (several during a large export) no longer rescan them.
    gc.freeze()
    try:
        asyncio.run(
            _export(
                format,
                partial,
                campaign=campaign,
                region=region,
                since=since,
                until=until,
                count=count,
            )
        )
    except AppError as exc:
        partial.unlink(missing_ok=True)
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if progress is not None:
            progress.stop()
    partial.replace(output)
    typer.echo(f"wrote {rows:,} rows ({format}) to {output}")


async def _check(repair: bool) -> int:
    engine = engine_for(get_settings())
    try:
        async with create_sessionmaker(engine)() as session:
            problems = await consistency.discrepancies(session)
            if problems and repair:
                await consistency.recount(session)
                await session.commit()
            return len(problems)
    finally:
        await engine.dispose()


@stats_app.command("check")
def check_command(
    repair: bool = typer.Option(
        False, help="Rebuild the counters from the letters if they differ."
    ),
) -> None:
    """Compare the counters with a count of the letters (slow on a large outbox)."""
    problems = asyncio.run(_check(repair))
    if not problems:
        typer.echo("counters agree with the letters")
        return
    typer.echo(f"{problems} counter rows disagree" + ("; rebuilt" if repair else ""), err=True)
    if not repair:
        raise typer.Exit(1)
