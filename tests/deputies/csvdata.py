"""Small CSV files in the import formats, built in the tests."""

from __future__ import annotations

import csv
import io
from typing import Any

LEGISLATURE_COLUMNS = [
    "region_code", "region_name_ru", "region_name_en", "legislature_code", "level",
    "legislature_name_ru", "legislature_name_en",
]  # fmt: skip
DEPUTY_COLUMNS = [
    "external_id", "region_code", "legislature_code", "surname", "first_name", "patronymic",
    "gender", "position", "party", "constituency", "email", "reception_address",
]  # fmt: skip

LEGISLATURES = [
    {"region_code": "RU-MOW", "region_name_ru": "Москва", "region_name_en": "Moscow",
     "legislature_code": "RU-MOW-LEG", "level": "regional",
     "legislature_name_ru": "Московская городская дума",
     "legislature_name_en": "Moscow City Duma"},
    {"region_code": "RU-TVE", "region_name_ru": "Тверская область", "region_name_en": "Tver Oblast",
     "legislature_code": "RU-TVE-LEG", "level": "regional",
     "legislature_name_ru": "Законодательное собрание Тверской области",
     "legislature_name_en": "Legislative Assembly of Tver Oblast"},
]  # fmt: skip


def deputy(n: int, legislature: str = "RU-MOW-LEG", **values: str) -> dict[str, str]:
    region = legislature.removesuffix("-LEG")
    row = {
        "external_id": f"{legislature}-{n:04d}",
        "region_code": region,
        "legislature_code": legislature,
        "surname": f"Петров{n}",
        "first_name": "Иван",
        "patronymic": "Сергеевич",
        "gender": "m",
        "position": "Депутат",
        "party": "Самовыдвиженец",
        "constituency": f"Одномандатный избирательный округ № {n}",
        "email": f"petrov{n}@{region.lower()}.example.org",
        "reception_address": "",
    }
    row.update(values)
    return row


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def legislatures_csv(rows: list[dict[str, str]] | None = None) -> bytes:
    return to_csv(LEGISLATURE_COLUMNS, LEGISLATURES if rows is None else rows)


def deputies_csv(rows: list[dict[str, str]]) -> bytes:
    return to_csv(DEPUTY_COLUMNS, rows)
