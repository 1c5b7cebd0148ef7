"""Validate a whole CSV file of deputies (or legislatures), then upsert it in one transaction.

Nothing is written unless every row is valid; every problem is reported as FILE:LINE: FIELD: reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.deputies.models import Deputy, Legislature, Region
from app.deputies.schemas import DeputyRow, LegislatureRow

Row = TypeVar("Row", bound=BaseModel)
Progress = Callable[[int], None]

# Optional columns where an empty cell means "no value" rather than an empty string.
NULLABLE_WHEN_EMPTY = frozenset({"gender", "reception_address"})
DEPUTY_FIELDS = (
    "legislature_id", "surname", "first_name", "patronymic", "gender", "position", "party",
    "constituency", "email", "reception_address",
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    reason: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.field}: {self.reason}"


class ImportFailed(Exception):
    """The file has problems; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file")
        self.problems = problems


@dataclass
class ImportSummary:
    rows: int = 0
    added: int = 0
    updated: int = 0
    reactivated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    dry_run: bool = False
    extra: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        verb = "would be" if self.dry_run else "were"
        parts = [f"{name} {value}" for name, value in self.counts().items()]
        return f"{self.rows} rows read; " + ", ".join(parts) + f" ({verb} written)"

    def counts(self) -> dict[str, int]:
        return {
            **self.extra,
            "added": self.added,
            "updated": self.updated,
            "reactivated": self.reactivated,
            "deactivated": self.deactivated,
            "unchanged": self.unchanged,
        }


def _decode(data: bytes) -> tuple[str, list[Problem]]:
    """Decode UTF-8, reporting every invalid line rather than stopping at the first."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problems = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(number, "-", f"invalid UTF-8 at byte {exc.start + 1}"))
        return data.decode("utf-8", errors="replace"), problems
    return text.removeprefix("\ufeff"), []


def parse_rows(
    data: bytes, model: type[Row], progress: Progress | None = None
) -> tuple[list[tuple[int, Row]], list[Problem]]:
    """Parse and validate every row: the valid rows with their line numbers, and all problems."""
    text, problems = _decode(data)
    # Reported once: the replacement characters of such a line are not reported again by field.
    undecodable = {problem.line for problem in problems}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = _records(reader, problems)
    header = next(records, None)
    if not header or header[1] is None:
        return [], [*problems, Problem(1, "-", "the file is empty: a header row is required")]
    columns = [name.strip() for name in header[1]]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        return [], [*problems, Problem(1, "header", "repeated column(s): " + ", ".join(repeated))]
    expected = list(model.model_fields)
    missing = [name for name in expected if name not in columns]
    unknown = [name for name in columns if name not in expected]
    if missing:
        problems.append(Problem(1, "header", "missing column(s): " + ", ".join(missing)))
    if unknown:
        problems.append(Problem(1, "header", "unknown column(s): " + ", ".join(unknown)))
    if missing or unknown:
        return [], problems
    rows: list[tuple[int, Row]] = []
    for line, cells in records:
        if cells is None or line in undecodable or not any(cell.strip() for cell in cells):
            continue  # a malformed or undecodable record (already reported), or a blank line
        if len(cells) != len(columns):
            problems.append(Problem(line, "-", f"{len(cells)} cells, expected {len(columns)}"))
            continue
        values: dict[str, Any] = {
            key: (None if key in NULLABLE_WHEN_EMPTY and not value.strip() else value)
            for key, value in zip(columns, cells, strict=True)
        }
        try:
            rows.append((line, model.model_validate(values)))
        except ValidationError as exc:
            problems.extend(
                Problem(line, ".".join(str(p) for p in err["loc"]) or "-", _reason(err))
                for err in exc.errors()
            )
        if progress is not None:
            progress(1)
    return rows, problems


def _records(reader: Any, problems: list[Problem]) -> Iterator[tuple[int, list[str] | None]]:
    """Yield (first line, cells) per record; a malformed record is reported and yields None."""
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem(previous + 1, "-", f"malformed CSV: {exc}"))
            previous = reader.line_num
            yield previous, None
            continue
        start, previous = previous + 1, reader.line_num
        yield start, cells


def _reason(error: Any) -> str:
    """A short, human reason for one pydantic error."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("too_short", "string_too_short"):
        return (
            "required" if ctx.get("min_length") == 1 else f"at least {ctx['min_length']} characters"
        )
    if kind in ("too_long", "string_too_long"):
        return f"too long: at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"malformed: must match {ctx['pattern']}"
    if kind == "missing":
        return "required"
    return str(error["msg"]).removeprefix("Value error, ")


def _duplicates(rows: list[tuple[int, Row]], key: Callable[[Row], str], name: str) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for line, row in rows:
        value = key(row)
        if value in seen:
            problems.append(
                Problem(line, name, f"duplicate {value!r}, first on line {seen[value]}")
            )
        else:
            seen[value] = line
    return problems


async def import_legislatures(
    session: AsyncSession, data: bytes, *, dry_run: bool = False
) -> ImportSummary:
    """Upsert regions and legislatures by code; on a problem raise ImportFailed, writing nothing."""
    rows, problems = parse_rows(data, LegislatureRow)
    problems += _duplicates(rows, lambda r: r.legislature_code, "legislature_code")
    regions: dict[str, tuple[int, LegislatureRow]] = {}
    for line, row in rows:
        first_line, first = regions.setdefault(row.region_code, (line, row))
        if (first.region_name_ru, first.region_name_en) != (row.region_name_ru, row.region_name_en):
            problems.append(Problem(
                line, "region_name_ru",
                f"region {row.region_code} is named differently on line {first_line}",
            ))  # fmt: skip
    if problems:
        raise ImportFailed(sorted(problems, key=lambda p: p.line))

    summary = ImportSummary(rows=len(rows), dry_run=dry_run)
    existing_regions = {r.code: r for r in await session.scalars(select(Region))}
    regions_added = 0
    for code, (_, row) in regions.items():
        region = existing_regions.get(code)
        if region is None:
            region = Region(code=code, name_ru=row.region_name_ru, name_en=row.region_name_en)
            session.add(region)
            existing_regions[code] = region
            regions_added += 1
        else:
            region.name_ru, region.name_en = row.region_name_ru, row.region_name_en
    await session.flush()
    existing = {leg.code: leg for leg in await session.scalars(select(Legislature))}
    for _, row in rows:
        values = {
            "region_id": existing_regions[row.region_code].id,
            "level": row.level,
            "name_ru": row.legislature_name_ru,
            "name_en": row.legislature_name_en,
        }
        legislature = existing.get(row.legislature_code)
        if legislature is None:
            session.add(Legislature(code=row.legislature_code, **values))
            summary.added += 1
        elif any(getattr(legislature, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(legislature, key, value)
            summary.updated += 1
        else:
            summary.unchanged += 1
    summary.extra["regions added"] = regions_added
    await session.flush()
    return summary


def _row_values(row: DeputyRow, legislature_id: int) -> dict[str, Any]:
    return {
        "legislature_id": legislature_id,
        "surname": row.surname,
        "first_name": row.first_name,
        "patronymic": row.patronymic,
        "gender": row.gender.value if row.gender else None,
        "position": row.position,
        "party": row.party,
        "constituency": row.constituency,
        "email": row.email,
        "reception_address": row.reception_address or None,
    }


async def import_deputies(
    session: AsyncSession,
    data: bytes,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Upsert deputies by external id; those of the file's legislatures that it omits go inactive.

    Raises ImportFailed, writing nothing, when any row has a problem. The caller commits.
    """
    rows, problems = parse_rows(data, DeputyRow, progress)
    problems += _duplicates(rows, lambda r: r.external_id, "external_id")
    legislatures = {
        code: (legislature_id, region_code)
        for code, legislature_id, region_code in await session.execute(
            select(Legislature.code, Legislature.id, Region.code).join(Region)
        )
    }
    for line, row in rows:
        known = legislatures.get(row.legislature_code)
        if known is None:
            problems.append(
                Problem(line, "legislature_code", f"unknown legislature {row.legislature_code!r}")
            )
        elif known[1] != row.region_code:
            problems.append(Problem(
                line, "region_code",
                f"legislature {row.legislature_code} is in {known[1]}, not {row.region_code}",
            ))  # fmt: skip
    if problems:
        raise ImportFailed(sorted(problems, key=lambda p: p.line))

    summary = ImportSummary(rows=len(rows), dry_run=dry_run)
    columns = [getattr(Deputy, name) for name in DEPUTY_FIELDS]
    existing = {
        external_id: (deputy_id, is_active, tuple(values))
        for deputy_id, external_id, is_active, *values in await session.execute(
            select(Deputy.id, Deputy.external_id, Deputy.is_active, *columns)
        )
    }
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, row in rows:
        values = _row_values(row, legislatures[row.legislature_code][0])
        seen.add(row.external_id)
        current = existing.get(row.external_id)
        if current is None:
            inserts.append({"external_id": row.external_id, "is_active": True,
                            "created_at": now, "updated_at": now, **values})  # fmt: skip
            continue
        deputy_id, is_active, old = current
        if old == tuple(values[name] for name in DEPUTY_FIELDS) and is_active:
            summary.unchanged += 1
            continue
        summary.reactivated += not is_active
        summary.updated += is_active
        updates.append({"id": deputy_id, "is_active": True, "updated_at": now, **values})
    summary.added = len(inserts)
    imported_legislatures = {legislatures[row.legislature_code][0] for _, row in rows}
    gone = [
        deputy_id
        for external_id, (deputy_id, is_active, old) in existing.items()
        if is_active and external_id not in seen and old[0] in imported_legislatures
    ]
    summary.deactivated = len(gone)
    if dry_run:
        return summary
    # Core executemany, not ORM bulk operations: one batched statement instead of many.
    table = cast(Table, Deputy.__table__)
    if inserts:
        await session.execute(insert(table), inserts)
    if updates:
        by_id = update(table).where(table.c.id == bindparam("deputy_id"))
        await session.execute(by_id, [{"deputy_id": u.pop("id"), **u} for u in updates])
    for start in range(0, len(gone), 1000):
        await session.execute(
            update(Deputy)
            .where(Deputy.id.in_(gone[start : start + 1000]))
            .values(is_active=False, updated_at=now)
        )
    return summary
