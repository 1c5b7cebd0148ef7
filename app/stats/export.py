"""Export writers: CSV, a JSON array and XLSX, from batches of aggregate rows.

Each writer consumes batches as they come from a server-side cursor, holds one batch at a time
and yields byte chunks: the HTTP route streams them, the CLI writes them to a file. XLSX is made
by our streaming writer (app.stats.xlsx): openpyxl needed 87-127 s for 500,000 rows.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.stats.aggregates import EXPORT_COLUMNS
from app.stats.schemas import STATUSES, ExportFormat
from app.stats.xlsx import Kind, SheetWriter

Batches = AsyncIterator[list[tuple[Any, ...]]]
MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.json: "application/json",
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The day, six texts (campaign, region, legislature, deputy id and name, domain), the counts.
XLSX_KINDS = (Kind.date, *(Kind.text,) * 6, *(Kind.integer,) * (len(STATUSES) + 1))
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


class _JsonTexts(dict[Any, str]):
    """JSON strings (or null) by value, each encoded once: the export's texts repeat."""

    def __missing__(self, value: Any) -> str:
        if len(self) >= TEXT_CACHE:
            self.clear()
        encoded = self[value] = _json_encode(value)
        return encoded


_json_encode = json.JSONEncoder(ensure_ascii=False).encode
_TEXTS = len(EXPORT_COLUMNS) - len(STATUSES) - 1  # day, campaign ... domain; then the counts
TEXT_CACHE = 100_000  # distinct texts kept encoded (bounded memory)
# One object per row as a %-format: the keys are fixed, the texts encoded once per distinct
# value, the counts must be whole numbers (%d refuses anything else). As fast as the CSV, where
# json.dumps per row took twice as long.
_JSON_ROW = (
    "{"
    + ", ".join(
        f"{_json_encode(name)}: {'%s' if i < _TEXTS else '%d'}"
        for i, name in enumerate(EXPORT_COLUMNS)
    )
    + "}"
)


async def json_chunks(
    batches: Batches, *, count: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """A JSON array of objects, one per row (and line), keyed by the export's column names."""
    yield b"["
    separator = "\n"
    texts = _JsonTexts()
    text = texts.__getitem__
    async for batch in batches:
        parts = [_JSON_ROW % (*map(text, row[:_TEXTS]), *row[_TEXTS:]) for row in batch]
        if parts:
            yield (separator + ",\n".join(parts)).encode()
            separator = ",\n"
        if count:
            count(len(batch))
    yield b"\n]\n"


async def xlsx_chunks(
    batches: Batches, *, count: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """An XLSX workbook with one sheet, `letters`, streamed: the day is a date cell, the counts
    are numbers, every text passes `_safe` (once per distinct value)."""
    sheet = SheetWriter(
        "letters", list(zip(EXPORT_COLUMNS, XLSX_KINDS, strict=True)), prepare=_safe
    )
    yield sheet.start()
    # Each batch is written in a thread (off the event loop) while the next one is read: the
    # database works on it meanwhile (PostgreSQL in its own process; SQLite without the GIL).
    writing: asyncio.Future[bytes] | None = None
    try:
        async for batch in batches:
            if writing is not None:
                if chunk := await writing:
                    yield chunk
            writing = asyncio.ensure_future(asyncio.to_thread(sheet.add, batch))
            if count:
                count(len(batch))
        if writing is not None:
            yield await writing
            writing = None
    finally:
        if writing is not None:  # stopped early (the client went away): let it finish
            await asyncio.wait([writing])
    yield sheet.finish()


def chunks(
    fmt: ExportFormat, batches: Batches, *, count: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """The export in this format, as an async iterator of bytes (`count`: rows written)."""
    writers = {ExportFormat.csv: csv_chunks, ExportFormat.json: json_chunks}
    return writers.get(fmt, xlsx_chunks)(batches, count=count)
