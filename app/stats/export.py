"""Export writers: CSV, a JSON array and XLSX, from batches of aggregate rows.

Each writer consumes batches as they come from a server-side cursor and holds one batch at a
time: CSV and JSON are yielded as byte chunks; XLSX is built by openpyxl in write-only mode into a
temporary file (it streams rows to disk), which is then read back in chunks.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from app.stats.schemas import ExportFormat
from app.stats.service import EXPORT_COLUMNS

Batches = AsyncIterator[list[tuple[Any, ...]]]
MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.json: "application/json",
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK = 64 * 1024
# A cell starting with one of these is a formula to a spreadsheet: quote it (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def filename(fmt: ExportFormat, *, today: dt.date | None = None) -> str:
    return f"appeals-letters-{(today or dt.datetime.now(dt.UTC).date()).isoformat()}.{fmt}"


async def csv_chunks(
    batches: Batches, *, count: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """UTF-8 CSV with a byte-order mark (spreadsheets then read Cyrillic right), one header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()
    async for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        # Only the registry's free text (deputy id and name) can start like a formula.
        writer.writerows((*row[:4], _safe(row[4]), _safe(row[5]), *row[6:]) for row in batch)
        yield buffer.getvalue().encode()
        if count:
            count(len(batch))


async def json_chunks(
    batches: Batches, *, count: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """A JSON array of objects, one per row, keyed by the export's column names."""
    yield b"["
    first = True
    async for batch in batches:
        parts = []
        for row in batch:
            record = json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)), ensure_ascii=False)
            parts.append(("\n" if first else ",\n") + record)
            first = False
        yield "".join(parts).encode()
        if count:
            count(len(batch))
    yield b"\n]\n"


async def write_xlsx(
    batches: Batches, path: Path, *, count: Callable[[int], None] | None = None
) -> None:
    """An XLSX workbook with one sheet, written to `path` in write-only mode (bounded memory)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("letters")
    sheet.append(list(EXPORT_COLUMNS))

    def append(batch: list[tuple[Any, ...]]) -> None:
        for row in batch:
            sheet.append(
                [dt.date.fromisoformat(row[0]), *row[1:4], _safe(row[4]), _safe(row[5]), *row[6:]]
            )

    async for batch in batches:
        # openpyxl is slow Python: keep it off the event loop, one batch at a time.
        await asyncio.to_thread(append, batch)
        if count:
            count(len(batch))
    await asyncio.to_thread(workbook.save, path)


async def xlsx_chunks(batches: Batches) -> AsyncIterator[bytes]:
    """The XLSX workbook as byte chunks, through a temporary file removed afterwards."""
    handle, name = tempfile.mkstemp(prefix="appeals-export-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        await write_xlsx(batches, path)
        with path.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                yield chunk
    finally:
        path.unlink(missing_ok=True)


def chunks(fmt: ExportFormat, batches: Batches) -> AsyncIterator[bytes]:
    """The export in this format, as an async iterator of bytes."""
    if fmt is ExportFormat.csv:
        return csv_chunks(batches)
    if fmt is ExportFormat.json:
        return json_chunks(batches)
    return xlsx_chunks(batches)
