"""The importer validates whole files, writes nothing on any problem, and upserts idempotently."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deputies import importer
from app.deputies.models import Deputy, Legislature, Region
from tests.deputies.csvdata import DEPUTY_COLUMNS, deputies_csv, deputy, legislatures_csv


async def _load_legislatures(session: AsyncSession) -> None:
    await importer.import_legislatures(session, legislatures_csv())
    await session.commit()


async def _import(session: AsyncSession, data: bytes) -> importer.ImportSummary:
    summary = await importer.import_deputies(session, data)
    await session.commit()
    return summary


async def _snapshot(session: AsyncSession) -> list[tuple[object, ...]]:
    rows = await session.execute(
        select(Deputy.external_id, Deputy.surname, Deputy.email, Deputy.is_active).order_by(
            Deputy.external_id
        )
    )
    return [tuple(row) for row in rows]


async def _problems(session: AsyncSession, data: bytes) -> list[str]:
    with pytest.raises(importer.ImportFailed) as failed:
        await importer.import_deputies(session, data)
    await session.rollback()
    return [p.format("f.csv") for p in failed.value.problems]


async def test_legislatures_import_and_reimport(session: AsyncSession) -> None:
    first = await importer.import_legislatures(session, legislatures_csv())
    await session.commit()
    assert (first.added, first.extra["regions added"]) == (2, 2)
    again = await importer.import_legislatures(session, legislatures_csv())
    await session.commit()
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    region = await session.scalar(select(Region).where(Region.code == "RU-MOW"))
    assert region is not None
    assert region.name_en == "Moscow"
    assert await session.scalar(select(func.count()).select_from(Legislature)) == 2


async def test_legislatures_with_conflicting_region_names_are_refused(
    session: AsyncSession,
) -> None:
    rows = [
        *legislatures_csv_rows(),
        {
            **legislatures_csv_rows()[0],
            "legislature_code": "RU-MOW-CITY",
            "region_name_en": "Moskva",
        },
    ]
    with pytest.raises(importer.ImportFailed) as failed:
        await importer.import_legislatures(session, legislatures_csv(rows))
    assert [p.format("l.csv") for p in failed.value.problems] == [
        "l.csv:4: region_name_ru: region RU-MOW is named differently on line 2"
    ]


def legislatures_csv_rows() -> list[dict[str, str]]:
    from tests.deputies.csvdata import LEGISLATURES

    return [dict(row) for row in LEGISLATURES]


async def test_valid_file_is_added_then_unchanged(session: AsyncSession) -> None:
    await _load_legislatures(session)
    data = deputies_csv([deputy(1), deputy(2), deputy(1, "RU-TVE-LEG", reception_address="Тверь")])
    first = await _import(session, data)
    assert (first.added, first.updated, first.deactivated, first.unchanged) == (3, 0, 0, 0)
    second = await _import(session, data)
    assert (second.added, second.updated, second.deactivated, second.unchanged) == (0, 0, 0, 3)
    stored = await session.scalar(select(Deputy).where(Deputy.external_id == "RU-TVE-LEG-0001"))
    assert stored is not None
    assert stored.reception_address == "Тверь"
    assert stored.gender == "m"
    assert stored.created_at.tzinfo is not None


async def test_changed_row_is_updated(session: AsyncSession) -> None:
    await _load_legislatures(session)
    await _import(session, deputies_csv([deputy(1), deputy(2)]))
    summary = await _import(session, deputies_csv([deputy(1, surname="Сидорова"), deputy(2)]))
    assert (summary.updated, summary.unchanged) == (1, 1)
    assert ("RU-MOW-LEG-0001", "Сидорова", "petrov1@ru-mow.example.org", True) in await _snapshot(
        session
    )


async def test_missing_deputies_are_deactivated_then_reactivated(session: AsyncSession) -> None:
    await _load_legislatures(session)
    await _import(session, deputies_csv([deputy(1), deputy(2), deputy(1, "RU-TVE-LEG")]))
    # A file of Moscow alone: Tver's deputies are not touched, Moscow's second goes inactive.
    summary = await _import(session, deputies_csv([deputy(1)]))
    assert (summary.deactivated, summary.unchanged) == (1, 1)
    states = {row[0]: row[3] for row in await _snapshot(session)}
    assert states == {"RU-MOW-LEG-0001": True, "RU-MOW-LEG-0002": False, "RU-TVE-LEG-0001": True}
    back = await _import(session, deputies_csv([deputy(1), deputy(2)]))
    assert (back.reactivated, back.unchanged, back.deactivated) == (1, 1, 0)
    assert all(active for *_, active in await _snapshot(session))


async def test_dry_run_reports_and_writes_nothing(session: AsyncSession) -> None:
    await _load_legislatures(session)
    await _import(session, deputies_csv([deputy(1), deputy(2)]))
    before = await _snapshot(session)
    summary = await importer.import_deputies(
        session, deputies_csv([deputy(1, surname="Новый"), deputy(3)]), dry_run=True
    )
    await session.commit()
    assert (summary.added, summary.updated, summary.deactivated) == (1, 1, 1)
    assert "would be written" in summary.describe()
    assert await _snapshot(session) == before


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"surname": ""}, "f.csv:2: surname: required"),
        ({"email": "not-an-address"}, "f.csv:2: email: An email address must have an @-sign."),
        ({"email": "a@b@example.org"}, "f.csv:2: email:"),
        ({"legislature_code": "RU-XXX-LEG", "region_code": "RU-XXX"},
         "f.csv:2: legislature_code: unknown legislature 'RU-XXX-LEG'"),
        ({"region_code": "RU-TVE"},
         "f.csv:2: region_code: legislature RU-MOW-LEG is in RU-MOW, not RU-TVE"),
        ({"region_code": "Moscow"}, "f.csv:2: region_code: malformed: must match"),
        ({"surname": "Я" * 101}, "f.csv:2: surname: too long: at most 100 characters"),
        ({"gender": "x"}, "f.csv:2: gender: Input should be 'm' or 'f'"),
        ({"external_id": "bad id!"}, "f.csv:2: external_id: malformed: must match"),
        ({"first_name": "Иван\x07"}, "f.csv:2: first_name: must not contain control characters"),
        ({"position": "Депутат\nBcc: x@example.org"},
         "f.csv:2: position: must be a single line"),
        # As a careful registrar takes a person's name and address (issue 16, point 7).
        ({"surname": "Ива\u2060нов"}, "f.csv:2: surname: must not contain invisible format"),
        ({"surname": "Ива\u00adнов"}, "f.csv:2: surname: must not contain invisible format"),
        ({"first_name": "\u3164\u3164\u3164"}, "f.csv:2: first_name: must not contain invisible"),
        ({"first_name": "1"}, "f.csv:2: first_name: must contain letters"),
        ({"patronymic": "..."}, "f.csv:2: patronymic: must contain letters"),
        ({"email": "a" * 65 + "@example.org"},
         "f.csv:2: email: the part before @ must be at most 64 characters"),
    ],
)  # fmt: skip
async def test_each_kind_of_bad_row_is_reported(
    session: AsyncSession, row: dict[str, str], expected: str
) -> None:
    await _load_legislatures(session)
    problems = await _problems(session, deputies_csv([deputy(1, **row)]))
    assert len(problems) == 1
    assert problems[0].startswith(expected)


async def test_every_problem_is_reported_and_nothing_written(session: AsyncSession) -> None:
    await _load_legislatures(session)
    await _import(session, deputies_csv([deputy(9)]))
    before = await _snapshot(session)
    rows = [deputy(1), deputy(2, email="nope"), deputy(3), deputy(1, surname="Дубль"),
            deputy(4, legislature_code="RU-NOPE")]  # fmt: skip
    problems = await _problems(session, deputies_csv(rows))
    assert problems == [
        "f.csv:3: email: An email address must have an @-sign.",
        "f.csv:5: external_id: duplicate 'RU-MOW-LEG-0001', first on line 2",
        "f.csv:6: legislature_code: unknown legislature 'RU-NOPE'",
    ]
    assert await _snapshot(session) == before


async def test_invalid_utf8_is_reported_with_its_line(session: AsyncSession) -> None:
    await _load_legislatures(session)
    data = deputies_csv([deputy(1), deputy(2)]).replace("Петров2".encode(), b"\xd0\x9f\xff\xfe")
    assert await _problems(session, data) == ["f.csv:3: -: invalid UTF-8 at byte 37"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "f.csv:1: -: the file is empty: a header row is required"),
        (b"external_id,surname\nx,y\n", "f.csv:1: header: missing column(s): region_code"),
        ((",".join([*DEPUTY_COLUMNS, "age"]) + "\n").encode(),
         "f.csv:1: header: unknown column(s): age"),
        ((",".join([*DEPUTY_COLUMNS, "surname"]) + "\n").encode(),
         "f.csv:1: header: repeated column(s): surname"),
    ],
)  # fmt: skip
async def test_bad_headers(session: AsyncSession, data: bytes, expected: str) -> None:
    problems = await _problems(session, data)
    assert problems[0].startswith(expected)


async def test_wrong_cell_count_and_quoted_newlines_keep_line_numbers(
    session: AsyncSession,
) -> None:
    await _load_legislatures(session)
    good = deputies_csv([deputy(1, reception_address="ул. Ленина,\nд. 1")])
    data = good + b"RU-MOW-LEG-0002,RU-MOW,too,few\n"
    # The first record spans lines 2-3, so the short one is on line 4.
    problems = await _problems(session, data)
    assert problems == [
        "f.csv:2: reception_address: must be a single line",
        "f.csv:4: -: 4 cells, expected 12",
    ]


async def test_blank_lines_and_bom_are_accepted(session: AsyncSession) -> None:
    await _load_legislatures(session)
    data = b"\xef\xbb\xbf" + deputies_csv([deputy(1)]) + b"\n\n"
    summary = await _import(session, data)
    assert summary.added == 1
