"""The streaming XLSX writer: what goes in comes back out through openpyxl (both of its readers),
escaped, typed, and in a valid package, whatever the text holds."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.cell.cell import Cell

from app.stats import xlsx
from app.stats.export import _safe
from app.stats.xlsx import Kind, SheetWriter, column_letters, xml_text

COLUMNS = [("day", Kind.date), ("name", Kind.text), ("n", Kind.integer)]


def build(rows: Sequence[Sequence[Any]], columns: Sequence[tuple[str, Kind]] = COLUMNS) -> bytes:
    sheet = SheetWriter("letters", columns, prepare=_safe)
    # Rows in two batches, as the export adds them.
    data = sheet.start() + sheet.add(rows[:1]) + sheet.add(rows[1:]) + sheet.finish()
    return data


def read_back(data: bytes, *, read_only: bool) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=read_only)
    assert book.sheetnames == ["letters"]
    return [tuple(row) for row in book["letters"].iter_rows(values_only=True)]


def assert_well_formed(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for name in archive.namelist():
            if name.endswith((".xml", ".rels")):
                ElementTree.fromstring(archive.read(name))  # raises on malformed XML


TRICKY = [
    ("<b>Tom & Jerry</b>", "<b>Tom & Jerry</b>"),
    ("a > b && c < d", "a > b && c < d"),
    ("quotes \" and '", "quotes \" and '"),
    ("Иванова Мария-Луиза Петровна", "Иванова Мария-Луиза Петровна"),
    ("emoji 🙂 and ё", "emoji 🙂 and ё"),
    # Characters XML 1.0 cannot carry are dropped, the rest kept.
    ("bell\x07 nul\x00 esc\x1b vt\x0b ff\x0c end", "bell nul esc vt ff end"),
    ("fffe\ufffe lone\ud800 end", "fffe lone end"),
    ("line one\nline two", "line one\nline two"),
    ("cr\r\nlf", "cr\r\nlf"),
    ("  spaced  ", "  spaced  "),
    # Formula-like values are quoted by _safe, as in the CSV.
    ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
    ("+7 999", "'+7 999"),
    ("-1", "'-1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tTAB", "'\tTAB"),
    ("]]>", "]]>"),
    ("&amp; already escaped", "&amp; already escaped"),
    ("", ""),
]


@pytest.mark.parametrize("read_only", [True, False])
def test_text_is_escaped_and_read_back(read_only: bool) -> None:
    day = dt.date(2026, 11, 20)
    rows = [(day, raw, i) for i, (raw, _) in enumerate(TRICKY)]
    data = build(rows)
    assert_well_formed(data)
    values = read_back(data, read_only=read_only)
    assert values[0] == ("day", "name", "n")
    assert [row[1] for row in values[1:]] == [expected for _, expected in TRICKY]
    assert [row[2] for row in values[1:]] == list(range(len(TRICKY)))


def test_dates_are_date_cells_and_numbers_are_numbers() -> None:
    rows = [
        ("2026-11-20", "a", 0),
        (dt.date(1900, 3, 1), "b", 12_345_678_901),
        ("2026-02-28", "c", -3),
    ]
    data = build(rows)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["letters"]
    cells = [sheet.cell(row=r, column=1) for r in (2, 3, 4)]
    assert all(isinstance(c, Cell) and c.is_date for c in cells)
    assert cells[0].number_format == "yyyy\\-mm\\-dd"
    assert [c.value for c in cells] == [
        dt.datetime(2026, 11, 20),
        dt.datetime(1900, 3, 1),
        dt.datetime(2026, 2, 28),
    ]
    assert [sheet.cell(row=r, column=3).value for r in (2, 3, 4)] == [0, 12_345_678_901, -3]
    assert sheet.cell(row=2, column=3).data_type == "n"
    # The header row is frozen and bold.
    assert sheet.freeze_panes == "A2"
    assert sheet.cell(row=1, column=1).font.b


def test_empty_cells_are_left_out() -> None:
    data = build([("2026-11-20", None, 1), (None, "x", None), ("2026-11-21", "y", 2)])
    assert_well_formed(data)
    assert read_back(data, read_only=False)[1:] == [
        (dt.datetime(2026, 11, 20), None, 1),
        (None, "x", None),
        (dt.datetime(2026, 11, 21), "y", 2),
    ]


def test_no_rows_is_a_header_only_workbook() -> None:
    data = build([])
    assert_well_formed(data)
    assert read_back(data, read_only=False) == [("day", "name", "n")]


def test_wrong_values_are_refused_not_written() -> None:
    for row in [("2026-11-20", "a", "12"), ("2026-11-20", "a", 1.5), ("2026-11-20", "a")]:
        sheet = SheetWriter("letters", COLUMNS)
        sheet.start()
        with pytest.raises((TypeError, ValueError)):
            sheet.add([row])
    sheet = SheetWriter("letters", COLUMNS)
    sheet.start()
    with pytest.raises(ValueError, match="Invalid isoformat"):
        sheet.add([("20.11.2026", "a", 1)])


def test_many_columns_and_distinct_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Column names past Z, and more distinct strings than the cache keeps."""
    monkeypatch.setattr(xlsx, "STRING_CACHE", 100)
    assert [column_letters(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]
    columns = [(f"c{i}", Kind.integer) for i in range(30)] + [("s", Kind.text)]
    sheet = SheetWriter("letters", columns)
    parts = [sheet.start()]
    total = 1_010
    for start in range(0, total, 300):
        parts.append(
            sheet.add([(*range(30), f"s{i}") for i in range(start, min(start + 300, total))])
        )
    parts.append(sheet.finish())
    book = openpyxl.load_workbook(io.BytesIO(b"".join(parts)), read_only=True)
    rows = book["letters"].iter_rows(values_only=True)
    assert next(rows)[29:] == ("c29", "s")
    assert list(rows) == [(*range(30), f"s{i}") for i in range(total)]
    assert len(sheet._strings) <= 100


def test_xml_text() -> None:
    assert xml_text("a") == "<t>a</t>"
    assert xml_text(" a") == '<t xml:space="preserve"> a</t>'
    assert xml_text("a<&>\x01\r") == '<t xml:space="preserve">a&lt;&amp;&gt;&#13;</t>'


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_reads_it(tmp_path: Path) -> None:
    """A second, independent reader (optional: only where LibreOffice is installed)."""
    rows = [("2026-11-20", raw, i) for i, (raw, _) in enumerate(TRICKY)]
    (tmp_path / "book.xlsx").write_bytes(build(rows))
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/profile",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",  # comma, double quote, UTF-8
            "--outdir",
            str(tmp_path),
            str(tmp_path / "book.xlsx"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (tmp_path / "book.csv").open(encoding="utf-8", newline="") as file:
        values = list(csv.reader(file))
    assert values[0] == ["day", "name", "n"]
    assert [row[0] for row in values[1:]] == ["2026-11-20"] * len(TRICKY)
    assert [row[2] for row in values[1:]] == [str(i) for i in range(len(TRICKY))]
    expected = [e.replace("\r\n", "\n") for _, e in TRICKY]
    assert [row[1].replace("\r\n", "\n") for row in values[1:]] == expected
