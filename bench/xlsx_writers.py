"""Benchmark: XLSX writers alone on 500,000 rows of the statistics export's shape.

Run: .venv/bin/python -m bench.xlsx_writers [--rows 500000] [--writers ours,openpyxl,...]

No database: rows are made in batches of 10,000 as the export's cursor yields them (the day as
an ISO string, six strings from registry-sized pools, Cyrillic names, eight counts). Each writer
runs in its own child process, which reports its time and its own peak resident memory. The
`none` writer only makes and walks the rows: the floor. XlsxWriter and pyexcelerate are not
dependencies of the project; writers whose library is missing are reported as such
(`pip install xlsxwriter pyexcelerate` to compare).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from app.stats.service import EXPORT_COLUMNS

WRITERS = ("none", "ours", "openpyxl", "xlsxwriter", "pyexcelerate")
BATCH = 10_000


def batches(total: int, seed: int = 7) -> Iterator[list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    days = [(dt.date(2026, 8, 1) + dt.timedelta(days=d)).isoformat() for d in range(60)]
    surnames = ["Иванов", "Смирнова", "Кузнецов", "Попова", "Васильев", "Петрова", "Соколов"]
    names = ["Александр", "Мария", "Сергей", "Анна", "Дмитрий", "Елена", "Ольга"]
    deputies = [
        (
            f"RU-{r:02d}-{i:05d}",
            f"{rng.choice(surnames)} {rng.choice(names)} {rng.choice(names)}ович",
            f"RU-{r:02d}",
            f"RU-{r:02d}-regional",
        )
        for i in range(6002)
        for r in [i % 83]
    ]
    domains = [f"duma{d}.example.ru" for d in range(60)]
    # A pool of rows, cycled with the day advancing: making rows must cost next to nothing.
    pool = []
    for _ in range(BATCH):
        deputy, name, region, legislature = deputies[rng.randrange(len(deputies))]
        counts = [rng.randrange(3) for _ in range(7)]
        domain = domains[rng.randrange(len(domains))]
        campaign = f"campaign-{1 + rng.randrange(5)}"
        pool.append((campaign, region, legislature, deputy, name, domain, *counts, sum(counts)))
    made = 0
    while made < total:
        size = min(BATCH, total - made)
        day = days[made * len(days) // total]
        yield [(day, *row) for row in pool[:size]]
        made += size


def _excel_row(row: tuple[Any, ...]) -> list[Any]:
    return [dt.date.fromisoformat(row[0]), *row[1:]]


def write(writer: str, total: int, out: io.BufferedWriter) -> int:
    rows = 0
    if writer == "none":
        for batch in batches(total):
            for row in batch:
                rows += len(row) > 0
    elif writer == "ours":
        from app.stats.xlsx import Kind, SheetWriter

        kinds = [Kind.date] + [Kind.text] * 6 + [Kind.integer] * (len(EXPORT_COLUMNS) - 7)
        sheet = SheetWriter("letters", list(zip(EXPORT_COLUMNS, kinds, strict=True)))
        out.write(sheet.start())
        for batch in batches(total):
            out.write(sheet.add(batch))
            rows += len(batch)
        out.write(sheet.finish())
    elif writer == "openpyxl":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        ws = workbook.create_sheet("letters")
        ws.append(list(EXPORT_COLUMNS))
        for batch in batches(total):
            for row in batch:
                ws.append(_excel_row(row))
            rows += len(batch)
        workbook.save(out)
    elif writer == "xlsxwriter":
        import xlsxwriter  # type: ignore[import-untyped, import-not-found, unused-ignore]

        book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False})
        sheet = book.add_worksheet("letters")
        date = book.add_format({"num_format": "yyyy-mm-dd"})
        sheet.write_row(0, 0, EXPORT_COLUMNS)
        n = 0
        for batch in batches(total):
            for row in batch:
                n += 1
                sheet.write_datetime(n, 0, dt.date.fromisoformat(row[0]), date)
                sheet.write_row(n, 1, row[1:])
            rows += len(batch)
        book.close()
    elif writer == "pyexcelerate":
        from pyexcelerate import Workbook as Fast  # type: ignore[import-untyped, import-not-found, unused-ignore]

        # pyexcelerate takes the whole sheet at once: every row is held in memory.
        data: list[list[Any]] = [list(EXPORT_COLUMNS)]
        for batch in batches(total):
            data.extend(_excel_row(row) for row in batch)
            rows += len(batch)
        fast = Fast()
        fast.new_sheet("letters", data=data)
        fast.save(out)
    else:
        raise SystemExit(f"unknown writer {writer}")
    return rows


def child(writer: str, total: int, path: str) -> None:
    started = time.perf_counter()
    with open(path, "wb") as out:
        rows = write(writer, total, out)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{rows} {seconds:.3f} {peak:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--writers", default=",".join(WRITERS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="/tmp/bench-xlsx-writers.xlsx")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.out)
        return
    print(f"{args.rows:,} rows of {len(EXPORT_COLUMNS)} columns, batches of {BATCH:,}")
    for writer in args.writers.split(","):
        command = ["-m", "bench.xlsx_writers", "--child", writer, "--out", args.out]
        done = subprocess.run(
            [sys.executable, *command, "--rows", str(args.rows)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
            print(f"{writer:<13} {reason}")
            continue
        rows, seconds, peak = done.stdout.split()
        size = os.path.getsize(args.out) / 1e6 if writer != "none" else 0.0
        print(
            f"{writer:<13} {int(rows):,} rows {float(seconds):7.2f} s  "
            f"{int(rows) / float(seconds):9,.0f} rows/s  peak {peak:>4} MB  file {size:5.1f} MB"
        )


if __name__ == "__main__":
    main()
