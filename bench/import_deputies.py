"""Benchmark: import the sample and a generated 100,000-deputy file on SQLite and PostgreSQL.

Run: .venv/bin/python -m bench.import_deputies [--total 100000] [--databases sqlite,postgresql]
Prints seconds and rows/s per step, the ratio to the targets, and raw sqlite3 inserts as a peer.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app import migrate
from app.db import create_engine, create_sessionmaker
from app.deputies import importer
from tests.databases import fresh_database

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "deputies_data"
TARGETS = {"sample": 1.0, "generated": 10.0}  # seconds


async def _timed_import(url: str, data: bytes) -> tuple[float, importer.ImportSummary]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            started = time.perf_counter()
            summary = await importer.import_deputies(session, data)
            await session.commit()
            return time.perf_counter() - started, summary
    finally:
        await engine.dispose()


async def _load_legislatures(url: str) -> None:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        await importer.import_legislatures(session, (DATA / "legislatures.csv").read_bytes())
        await session.commit()
    await engine.dispose()


def _report(
    kind: str, label: str, seconds: float, summary: importer.ImportSummary, peer: float
) -> None:
    target = TARGETS.get(label.split()[0])
    ratio = f"  target {target:.0f} s: {seconds / target:.0%} of it" if target else ""
    if label.startswith("generated (new)"):
        ratio += f"; {summary.rows / seconds / peer:.1%} of raw sqlite3"
    print(
        f"{kind:<10} {label:<22} {summary.rows:>7} rows  {seconds:7.2f} s  "
        f"{summary.rows / seconds:>9,.0f} rows/s{ratio}"
    )


async def _bench(kind: str, files: dict[str, Path], workdir: Path, peer: float) -> None:
    for label, path in files.items():
        data = path.read_bytes()
        async with fresh_database(kind, workdir) as url:
            await asyncio.to_thread(migrate.upgrade, url)
            await _load_legislatures(url)
            seconds, summary = await _timed_import(url, data)
            _report(kind, f"{label} (new)", seconds, summary, peer)
            seconds, summary = await _timed_import(url, data)
            _report(kind, f"{label} (re-import)", seconds, summary, peer)


def _raw_sqlite_peer(path: Path, workdir: Path) -> float:
    """Plain sqlite3 executemany of the same rows into a bare table: the floor we compare to."""
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        rows = [tuple(r) for r in csv.reader(f)][1:]
    connection = sqlite3.connect(workdir / "raw.sqlite3")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"CREATE TABLE t ({', '.join(f'c{i} TEXT' for i in range(len(rows[0])))})")
    started = time.perf_counter()
    with connection:
        marks = ", ".join("?" * len(rows[0]))
        connection.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    seconds = time.perf_counter() - started
    connection.close()
    print(f"{'peer':<10} {'raw sqlite3 insert':<22} {len(rows):>7} rows  {seconds:7.2f} s  "
          f"{len(rows) / seconds:>9,.0f} rows/s")  # fmt: skip
    return len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        generated = workdir / "generated.csv"
        subprocess.run(
            [sys.executable, str(DATA / "generate.py"), "--total", str(args.total),
             "--out", str(generated)],
            check=True,
        )  # fmt: skip
        files = {"sample": DATA / "deputies.csv", "generated": generated}
        peer = _raw_sqlite_peer(generated, workdir)
        for kind in args.databases.split(","):
            asyncio.run(_bench(kind, files, workdir, peer))


if __name__ == "__main__":
    main()
