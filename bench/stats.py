"""Benchmark: statistics over 1,000,000 letters on SQLite and PostgreSQL.

Run: .venv/bin/python -m bench.stats [--letters 1000000] [--databases sqlite,postgresql]

Loads the sample registry (83 regions, 6,002 deputies), then generates letters fast (Core
executemany on SQLite, COPY on PostgreSQL; the counter triggers fire as in production) over 120 UTC
days, 5 campaigns, realistic statuses, and the last 30 days not yet purged (bodies, senders).
Then times, each the median of several runs:
- the home-page total (`letters_sent`, uncached) and the same figure by a query over `letter`;
- the dashboard's queries (every table) without and with a campaign filter, and the charts;
- the grouped queries over `letter` that counters replace (the alternative design);
- a bulk status change (the worker's shape) with the triggers;
- an export of at least 500,000 rows by `appeals stats export` in a child process, in each format
  (CSV, XLSX, JSON), with the child's peak resident memory and the load average before it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import migrate
from app.db import create_engine, create_sessionmaker
from app.deputies import importer
from app.deputies.models import Deputy, Legislature
from app.letters.models import Letter
from app.stats import charts, consistency
from app.stats import service as stats_service
from app.stats.models import DeputyDayCount
from app.stats.schemas import StatsFilter
from tests.databases import fresh_database

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "deputies_data"
APPEALS = str(Path(sys.executable).with_name("appeals"))
TARGETS = {"total": 0.050, "dashboard": 0.500, "export": 10.0, "export_mb": 200.0}
DAYS = 120
CAMPAIGNS = 5
END = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
STATUSES = [("sent", 80), ("queued", 8), ("failed", 3), ("deferred", 3), ("cancelled", 4)]
STATUSES += [("held", 2)]


def _ratio(seconds: float, target: float) -> str:
    return f"target {target * 1000:,.0f} ms: {seconds / target:.0%} of it"


async def _median(fn: Callable[[], Awaitable[Any]], runs: int = 7) -> float:
    await fn()  # warm the caches once
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _registry(url: str) -> None:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        await importer.import_legislatures(session, (DATA / "legislatures.csv").read_bytes())
        await importer.import_deputies(session, (DATA / "deputies.csv").read_bytes())
        for n in range(1, CAMPAIGNS + 1):
            await session.execute(
                text(
                    "INSERT INTO campaign (id, slug, title, description, status, all_regions, "
                    "legislature_level, requires_address, created_at, updated_at) VALUES "
                    f"({n}, 'campaign-{n}', 'Кампания {n}', '', 'published', true, 'regional', "
                    "false, :now, :now)"
                ),
                {"now": END},
            )
        await session.commit()
    await engine.dispose()


def _letters(deputies: list[tuple[int, str]], total: int, seed: int = 7) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    rows = []
    for i in range(total):
        deputy_id, email = deputies[rng.randrange(len(deputies))]
        created = END - dt.timedelta(seconds=rng.randrange(DAYS * 86400))
        recent = END - created < dt.timedelta(days=30)
        status = statuses[rng.randrange(len(statuses))]
        sender = f"sender{rng.randrange(total // 2)}@mail.example" if recent else None
        rows.append(
            (
                1 + min(int(rng.expovariate(0.8)), CAMPAIGNS - 1),  # campaign: a few big ones
                1,
                deputy_id,
                email,
                email.rsplit("@", 1)[1],
                f"<bench-{i}@appeals.example>",
                "Имя Фамилия" if recent else None,
                sender,
                status,
                1 if status != "queued" else 0,
                created,
                created,
                created,
                created if status in ("sent", "failed", "cancelled") else None,
            )
        )
    return rows


COLUMNS = [
    "campaign_id",
    "appeal_version_id",
    "deputy_id",
    "recipient_email",
    "recipient_domain",
    "message_id",
    "sender_name",
    "sender_email",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
    "finished_at",
]


async def _load_letters(engine: AsyncEngine, total: int) -> float:
    async with create_sessionmaker(engine)() as session:
        deputies = [
            (int(i), str(e)) for i, e in (await session.execute(select(Deputy.id, Deputy.email)))
        ]
    rows = _letters(deputies, total)
    started = time.perf_counter()
    batch = 50_000
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            for start in range(0, total, batch):
                # COPY fires the statement trigger once per batch, as a bulk INSERT would.
                await raw.copy_records_to_table(
                    "letter", records=rows[start : start + batch], columns=COLUMNS
                )
        else:
            statement = insert(Letter.__table__)  # type: ignore[arg-type]
            for start in range(0, total, batch):
                chunk = [dict(zip(COLUMNS, r, strict=True)) for r in rows[start : start + batch]]
                await conn.execute(statement, chunk)
                await conn.commit()
        await conn.commit()
    seconds = time.perf_counter() - started
    # Steady state: autovacuum would have run (PostgreSQL index-only scans need the visibility map).
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        vacuum = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        await conn.execute(text(vacuum))
    return seconds


async def _dashboard(session: AsyncSession, scope: stats_service.Scope) -> None:
    await stats_service.totals(session, scope=scope)
    await stats_service.by_campaign(session, scope=scope)
    await stats_service.by_region(session, scope=scope)
    await stats_service.by_legislature(session, scope=scope)
    await stats_service.by_day(session, scope=scope)
    await stats_service.by_domain(session, scope=scope)
    await stats_service.top_deputies(session, scope=scope)


async def _alternative(session: AsyncSession) -> None:
    """What the dashboard would run without counters: grouped queries over the letters."""
    day = consistency.day_of(session)
    await session.execute(select(Letter.status, func.count()).group_by(Letter.status))
    await session.execute(
        select(Legislature.region_id, Letter.status, func.count())
        .join(Deputy, Deputy.id == Letter.deputy_id)
        .join(Legislature, Legislature.id == Deputy.legislature_id)
        .group_by(Legislature.region_id, Letter.status)
    )
    await session.execute(select(day, Letter.status, func.count()).group_by(day, Letter.status))
    await session.execute(
        select(Letter.recipient_domain, Letter.status, func.count()).group_by(
            Letter.recipient_domain, Letter.status
        )
    )
    await session.execute(
        select(Letter.campaign_id, Letter.deputy_id, func.count()).group_by(
            Letter.campaign_id, Letter.deputy_id
        )
    )


def _export(url: str, fmt: str, until: dt.date, out: Path) -> tuple[float, float, str]:
    """Run `appeals stats export` as a child; its time and its own peak resident memory.

    Through /usr/bin/time: a child forked from this big process would inherit its peak.
    """
    command = [APPEALS, "stats", "export", "--format", fmt, "--until", str(until), "-o", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", *command],
        env={"APPEALS_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak_kb = int(done.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    return seconds, peak_kb / 1024, done.stdout.strip()


async def run(kind: str, total: int, tmp: Path, *, xlsx: bool = True) -> None:
    async with fresh_database(kind, tmp) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        await _registry(url)
        engine = create_engine(url)
        seconds = await _load_letters(engine, total)
        print(
            f"{kind:<10} load {total:,} letters (triggers on)   {seconds:7.2f} s  "
            f"{total / seconds:,.0f} letters/s"
        )
        maker = create_sessionmaker(engine)
        async with maker() as session:
            everything = stats_service.Scope(filter=StatsFilter())
            one = await stats_service.resolve(session, filter=StatsFilter(campaign="campaign-2"))

            async def home() -> int:
                stats_service.clear_public_cache()
                return await stats_service.letters_sent(session)

            async def home_live() -> Any:
                return await session.scalar(
                    select(func.count()).select_from(Letter).where(Letter.status == "sent")
                )

            async def senders() -> Any:
                return await stats_service.distinct_senders(session, scope=everything)

            figures = [
                ("home-page total (counters)", await _median(home), TARGETS["total"]),
                ("home-page total (count over letter)", await _median(home_live, 3), None),
                (
                    "dashboard, all campaigns",
                    await _median(lambda: _dashboard(session, everything), 3),
                    TARGETS["dashboard"],
                ),
                (
                    "dashboard, one campaign",
                    await _median(lambda: _dashboard(session, one), 3),
                    TARGETS["dashboard"],
                ),
                ("  of which distinct senders", await _median(senders, 3), None),
                (
                    "dashboard by grouping letters",
                    await _median(lambda: _alternative(session), 1),
                    None,
                ),
            ]
            rows = {
                "days": await stats_service.by_day(session, scope=everything),
                "regions": await stats_service.by_region(session, scope=everything),
                "health": await stats_service.by_domain(session, scope=everything),
            }
            labels = {s: s for s in ("queued", "sending", "sent", "deferred", "failed")}
            labels |= {"cancelled": "cancelled", "held": "held", "other": "other"}

            async def draw() -> None:
                for fn, data in (
                    (charts.letters_per_day, rows["days"]),
                    (charts.letters_per_region, rows["regions"]),
                    (charts.delivery_health, rows["health"]),
                ):
                    await asyncio.to_thread(fn, data, title="t", labels=labels, empty="-")

            figures.append(("three charts drawn", await _median(draw, 3), None))
            for label, value, target in figures:
                ratio = _ratio(value, target) if target else ""
                print(f"{kind:<10} {label:<38} {value * 1000:9.1f} ms  {ratio}")

            # A bulk change of 100,000 statuses through the triggers (queued -> cancelled).
            ids = select(Letter.id).where(Letter.status == "queued").limit(100_000)
            started = time.perf_counter()
            result = await session.execute(
                update(Letter)
                .where(Letter.id.in_(ids))
                .values(status="cancelled")
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            moved = int(result.rowcount)  # type: ignore[attr-defined]
            seconds = time.perf_counter() - started
            print(f"{kind:<10} bulk status change of {moved:,} letters   {seconds:7.2f} s")
            problems = await stats_service.discrepancies(session)
            print(f"{kind:<10} counters agree with the letters: {not problems}")

            # The first days whose finest aggregates make at least 500,000 export rows.
            groups = (
                select(
                    DeputyDayCount.day,
                    DeputyDayCount.campaign_id,
                    DeputyDayCount.deputy_id,
                    DeputyDayCount.recipient_domain,
                )
                .distinct()
                .subquery()
            )
            per_day = (
                await session.execute(
                    select(groups.c.day, func.count()).group_by(groups.c.day).order_by(groups.c.day)
                )
            ).all()
        await engine.dispose()
        acc, until = 0, per_day[-1][0]
        for day, n in per_day:
            acc += int(n)
            if acc >= 500_000:
                until = day
                break
        for fmt in ("csv", "xlsx", "json") if xlsx else ("csv", "json"):
            out = tmp / f"export.{fmt}"
            load = os.getloadavg()[0]
            seconds, peak_mb, summary = _export(url, fmt, until, out)
            memory = peak_mb / TARGETS["export_mb"]
            ratio = f"target 10 s: {seconds / TARGETS['export']:.0%}; 200 MB: {memory:.0%}"
            written = summary.split(" rows")[0].removeprefix("wrote ")
            print(
                f"{kind:<10} export {fmt:<4} {written} rows  {seconds:6.2f} s  "
                f"peak {peak_mb:5.0f} MB  {ratio}  (load {load:.1f})"
            )
            out.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--skip-xlsx", action="store_true", help="Export CSV and JSON only.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as tmp:
        for kind in args.databases.split(","):
            asyncio.run(run(kind, args.letters, Path(tmp), xlsx=not args.skip_xlsx))


if __name__ == "__main__":
    main()
