"""A streaming XLSX writer for one sheet of plain values: text, whole numbers and dates.

Why our own: openpyxl (write-only), XlsxWriter (constant_memory) and pyexcelerate need 30 to 90 s
for 500,000 rows of the export's shape before the database is even read (bench/xlsx_writers.py;
figures in bench/README.md), and the whole export must take under 10 s. This writer serialises
a row with one bytes %-format over a per-sheet template, escapes each distinct string once (the
values repeat: registry codes, names, domains), and streams the worksheet XML through `zipfile`
into a sink that the caller drains after every batch: nothing is held but the current batch, the
compressor's window and a bounded cache of distinct strings.

Strings are inline strings (no shared-string table to keep until the end), dates are day serials
with a `yyyy-mm-dd` style, numbers are numbers. Characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from operator import call, index
from typing import Any
from xml.sax.saxutils import quoteattr

# Cache at most this many distinct strings (about 25 MB at most); past it, cleared: memory stays
# bounded whatever the data. The export's strings come from the registry, usually far fewer.
STRING_CACHE = 100_000

_EPOCH = dt.date(1899, 12, 30)  # day 0 of the spreadsheet date system (1900, Lotus-compatible)
# What XML 1.0 cannot carry at all: control characters other than tab, newline and carriage
# return, lone surrogates and the two non-characters U+FFFE and U+FFFF.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPECIAL = re.compile("[\x00-\x1f&<>\ud800-\udfff\ufffe\uffff]")


class Kind(StrEnum):
    text = "text"
    integer = "integer"
    date = "date"  # a datetime.date or an ISO 'YYYY-MM-DD' string


def column_letters(index: int) -> str:
    """Spreadsheet column name of a 0-based index: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def xml_text(value: str) -> str:
    """`value` as the content of an inline string: escaped, illegal characters dropped."""
    # Spreadsheets trim leading and trailing white space unless told to keep it.
    preserve = value != value.strip(" \t\n\r")
    if _SPECIAL.search(value):
        value = _ILLEGAL.sub("", value)
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        value = value.replace("\r", "&#13;")  # a bare CR would be read back as LF
    if preserve:
        return f'<t xml:space="preserve">{value}</t>'
    return f"<t>{value}</t>"


_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>\
<Default Extension="xml" ContentType="application/xml"/>\
<Override PartName="/xl/workbook.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>\
<Override PartName="/xl/worksheets/sheet1.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>\
<Override PartName="/xl/styles.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>\
</Types>"""
_ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
<Relationship Id="rId1" Target="xl/workbook.xml" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>\
</Relationships>"""
_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" \
xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">\
<sheets><sheet name={name} sheetId="1" r:id="rId1"/></sheets></workbook>"""
_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
<Relationship Id="rId1" Target="worksheets/sheet1.xml" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>\
<Relationship Id="rId2" Target="styles.xml" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"/>\
</Relationships>"""
# Style 0: general; style 1: a date (custom number format 164, yyyy-mm-dd); style 2: bold.
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">\
<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/></numFmts>\
<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>\
<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>\
<fills count="2"><fill><patternFill patternType="none"/></fill>\
<fill><patternFill patternType="gray125"/></fill></fills>\
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>\
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>\
<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>\
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>\
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>\
</styleSheet>"""
# The header row stays in view (frozen) while scrolling.
_SHEET_START = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">\
<sheetViews><sheetView workbookViewId="0">\
<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>\
</sheetView></sheetViews><sheetData>"""
_SHEET_END = "</sheetData></worksheet>"


class _Sink:
    """A write-only file for zipfile that keeps what was written until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class _Empty(Exception):
    """A None where the fast path wants a value: the row takes the slow path."""


class _Escaped(dict[Any, bytes]):
    """Inline-string contents (UTF-8) by value, each prepared and escaped once: the export's
    strings repeat."""

    def __init__(self, prepare: Callable[[str], str]) -> None:
        super().__init__()
        self._prepare = prepare

    def __missing__(self, value: Any) -> bytes:
        if value is None:
            raise _Empty
        if len(self) >= STRING_CACHE:
            self.clear()
        escaped = self[value] = xml_text(self._prepare(str(value))).encode()
        return escaped


class _Serials(dict[Any, int]):
    """Day serials by date or ISO date string."""

    def __missing__(self, value: Any) -> int:
        if value is None:
            raise _Empty
        if len(self) >= STRING_CACHE:
            self.clear()
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
        serial = self[value] = (day - _EPOCH).days
        return serial


def _cell(index: int, kind: Kind, *, ref: bool = True) -> str:
    """One cell's template: with `ref`, %d for the row number first; then its value."""
    at = f' r="{column_letters(index)}%d"' if ref else ""
    if kind is Kind.text:
        return f'<c{at} t="inlineStr"><is>%s</is></c>'
    if kind is Kind.date:
        return f'<c{at} s="1"><v>%d</v></c>'
    return f"<c{at}><v>%d</v></c>"


class SheetWriter:
    """One workbook with one sheet, produced as bytes while rows are added.

    `start()` returns the first bytes (with the header row), `add(rows)` the bytes made while
    adding those rows (possibly none: the compressor buffers), `finish()` the rest. Each row is a
    sequence of values of the columns' kinds; None leaves a cell empty. `prepare` is applied to
    every text value (once per distinct value) before it is escaped. Not thread-safe.
    """

    def __init__(
        self,
        sheet: str,
        columns: Sequence[tuple[str, Kind]],
        *,
        prepare: Callable[[str], str] = str,
        compresslevel: int = 1,
    ) -> None:
        self._sheet = sheet
        self._columns = list(columns)
        self._kinds = [kind for _, kind in columns]
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(
            self._sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
        )
        self._strings = _Escaped(prepare)
        self._serials = _Serials()
        # Per column, the conversion of its value: escaped UTF-8 text, a day serial, or the
        # number itself (operator.index refuses anything but a whole number, None included).
        self._converters: list[Callable[[Any], Any]] = [
            self._strings.__getitem__
            if kind is Kind.text
            else self._serials.__getitem__
            if kind is Kind.date
            else index
            for kind in self._kinds
        ]
        # One bytes %-format per row; its arguments: the row number, then each cell's value.
        # Bytes all along: no str of mixed scripts to build and encode again. Cells of a full
        # row go without their reference (optional: a cell without one follows the previous).
        self._template = (
            '<row r="%d">'
            + "".join(_cell(i, k, ref=False) for i, k in enumerate(self._kinds))
            + "</row>"
        ).encode()
        self._row = 1
        self._sheet_file: Any = None

    def start(self) -> bytes:
        """The fixed parts and the header row."""
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        self._zip.writestr("xl/workbook.xml", _WORKBOOK.format(name=quoteattr(self._sheet)))
        self._zip.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._zip.writestr("xl/styles.xml", _STYLES)
        # force_zip64: the size is unknown until the end and may pass 4 GB.
        self._sheet_file = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        header = "".join(
            f'<c r="{column_letters(i)}1" t="inlineStr" s="2"><is>{xml_text(name)}</is></c>'
            for i, (name, _) in enumerate(self._columns)
        )
        self._sheet_file.write(f'{_SHEET_START}<row r="1">{header}</row>'.encode())
        return self._sink.take()

    def _sparse(self, n: int, row: Sequence[Any]) -> bytes:
        """A row with empty cells (None): those cells are left out."""
        cells = [
            _cell(i, kind).encode() % (n, convert(value))
            for i, (kind, convert, value) in enumerate(
                zip(self._kinds, self._converters, row, strict=True)
            )
            if value is not None
        ]
        return b'<row r="%d">%s</row>' % (n, b"".join(cells))

    def add(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """Serialise rows; the compressed bytes ready so far."""
        template = self._template
        converters = self._converters
        width = len(converters)
        parts = []
        n = self._row
        for row in rows:
            n += 1
            if len(row) != width:
                raise ValueError(f"row {n} has {len(row)} values, not {width}")
            try:
                parts.append(template % (n, *map(call, converters, row)))
            except (_Empty, TypeError):
                if None not in row:
                    raise
                parts.append(self._sparse(n, row))
        self._row = n
        self._sheet_file.write(b"".join(parts))
        return self._sink.take()

    def finish(self) -> bytes:
        """The end of the sheet and the archive's directory."""
        self._sheet_file.write(_SHEET_END.encode())
        self._sheet_file.close()
        self._zip.close()
        return self._sink.take()
