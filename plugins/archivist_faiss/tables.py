"""Loaders for tables: spreadsheets (xlsx, xlsm, xlsb, xls, ods) and CSV/TSV files.

A table is read as rows a person (and the encoder) can read alone: each row is one
line that names where it is and gives every value with its column's header,
``Sheet1, row 12: Name: Ann; Amount: 40``, so a passage cut from the middle of a sheet
still says what its numbers are. The first row that holds anything is taken as the
headers; a column without a header is named by its letter (``C``). Each sheet is one
part whose locator names it (``section="Sheet1"``), so a citation says which sheet.

Spreadsheets are read with python-calamine (Rust's calamine: xlsx, xls, xlsb and ods
with one reader, values as Python numbers, dates and strings, no formula evaluation).
CSV and TSV are decoded as text files are (:func:`~archivist_faiss.textfiles.read_text`)
and split with the standard library's :mod:`csv`; a ``.csv`` file's delimiter is
sniffed among ``, ; TAB |``.

What a table may cost is bounded: at most :data:`MAX_ROWS` rows and :data:`MAX_CELLS`
cells in a file (all sheets together); a bigger one is skipped with a reason that says
so (indexing a million-row export would take hours on a laptop and answer nothing
well). The zip of an xlsx or ods file is checked first like any office file's
(:func:`~archivist_faiss.officefiles.open_zip`).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from archivist import Document, DocumentPart, Locator, UnreadableDocument

MAX_ROWS = 50_000  # rows in one file, every sheet together
MAX_CELLS = 500_000  # cells in one file (rows x columns of each sheet's used range)
MAX_CELL_CHARS = 2_000  # what one cell contributes to the text (a cell may hold a whole essay)

ZIPPED = (".xlsx", ".xlsm", ".ods")


class TooBig(UnreadableDocument):
    """A table over :data:`MAX_ROWS` rows or :data:`MAX_CELLS` cells."""


def column_name(n: int) -> str:
    """The spreadsheet letter of the 0-based column ``n``: A, B, ..., Z, AA, ..."""
    name = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(65 + rest) + name
    return name


def cell_text(value: Any) -> str:
    """A cell's value as people write it: 40 not 40.0, dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


class Rows:
    """Counts a file's rows and cells against the limits, and writes rows as lines."""

    def __init__(self, path: Path) -> None:
        self.name = Path(path).name
        self.rows = 0
        self.cells = 0

    def count(self, rows: int, cells: int) -> None:
        self.rows += rows
        self.cells += cells
        if self.rows > MAX_ROWS:
            raise TooBig(f"table of more than {MAX_ROWS:,} rows (too big to index usefully; "
                         "split it, or export the part you ask about)")
        if self.cells > MAX_CELLS:
            raise TooBig(f"table of more than {MAX_CELLS:,} cells (too big to index usefully; "
                         "split it, or export the part you ask about)")

    def part(self, rows: Iterable[tuple[int, Sequence[Any]]], sheet: str | None,
             first_column: int = 0) -> DocumentPart | None:
        """One sheet (or the CSV file) as a part: its rows as lines, ``(row number, values)``;
        the values start at column ``first_column`` (0: A)."""
        headers: list[str] | None = None
        lines: list[str] = []
        where = f"{sheet}, row" if sheet else "Row"
        for number, values in rows:
            texts = [cell_text(v) for v in values]
            self.count(1, len(texts))
            if not any(texts):
                continue
            if headers is None:
                headers = [t or column_name(first_column + n) for n, t in enumerate(texts)]
                lines.append(f"{sheet + ', c' if sheet else 'C'}olumns: {'; '.join(headers)}")
                continue
            pairs = [f"{headers[n] if n < len(headers) else column_name(first_column + n)}: {t}"
                     for n, t in enumerate(texts) if t]
            lines.append(f"{where} {number}: {'; '.join(pairs)}")
        if not lines:
            return None
        text = "\n\n".join(lines) + "\n"
        return DocumentPart(text, Locator(page=None, section=sheet, start=0, end=len(text)))


class SpreadsheetLoader:
    """Excel and OpenDocument spreadsheets, one part per sheet (python-calamine)."""

    name = "spreadsheet"
    extensions: tuple[str, ...] = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")

    def load(self, path: Path) -> Document:
        path = Path(path)
        if path.suffix.lower() in ZIPPED:
            from archivist_faiss.officefiles import open_zip

            open_zip(path).close()  # declared sizes within the limits of any office file
        from python_calamine import CalamineWorkbook

        try:
            book = CalamineWorkbook.from_path(str(path))
        except BaseException as exc:  # noqa: BLE001 - calamine's errors, and a Rust panic (a BaseException)
            raise UnreadableDocument(_problem(exc)) from _reraised(exc)
        counter = Rows(path)
        parts: list[DocumentPart] = []
        names: list[str] = []
        try:
            for name in book.sheet_names:
                try:
                    sheet = book.get_sheet_by_name(name)
                except BaseException as exc:  # noqa: BLE001 - one broken sheet: say which
                    raise UnreadableDocument(f"sheet {name!r}: {_problem(exc)}") from _reraised(exc)
                # iter_rows() yields every row from the first, and the columns of the
                # used range only: a sheet whose data starts at C5 gives rows 1.. from C.
                height, width = sheet.total_height, sheet.width
                if height * width > MAX_CELLS:
                    counter.count(0, height * width)
                first_column = sheet.start[1] if sheet.start else 0
                rows = ((n + 1, values) for n, values in enumerate(sheet.iter_rows()))
                part = counter.part(rows, name, first_column)
                if part is not None:
                    parts.append(part)
                    names.append(name)
        finally:
            book.close()
        if not parts:
            raise UnreadableDocument("no text (every sheet is empty)")
        return Document(str(path), tuple(parts), title=None, mime_type=_MIME.get(path.suffix.lower()),
                        metadata={"sheets": ", ".join(names)})


class CsvLoader:
    """Comma- and tab-separated values, one part (rows with their headers)."""

    name = "csv"
    extensions: tuple[str, ...] = (".csv", ".tsv", ".tab")

    def load(self, path: Path) -> Document:
        from archivist_faiss.textfiles import read_text

        path = Path(path)
        pieces = read_text(path)  # a megabyte at a time: rows are counted as they come
        first = next(pieces, "")
        if not first.strip() and not any(piece.strip() for piece in pieces):
            raise UnreadableDocument("no text (empty or whitespace only)")
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else _sniff(first[:65536])
        reader = csv.reader(_lines(first, pieces), delimiter=delimiter)
        part = Rows(path).part(_numbered(reader), None)
        if part is None:
            raise UnreadableDocument("no text (every row is empty)")
        return Document(str(path), (part,), title=None, mime_type="text/csv")


def _lines(first: str, rest: Iterator[str]) -> Iterator[str]:
    """The lines of the text ``first`` and ``rest`` make, each with its line end."""
    held = ""
    for piece in itertools.chain((first,), rest):
        lines = (held + piece).split("\n")
        held = lines.pop()
        for line in lines:
            yield line + "\n"
    if held:
        yield held


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """A csv reader's rows, numbered from 1 as a spreadsheet opening the file numbers them."""
    try:
        yield from enumerate(reader, 1)
    except csv.Error as exc:
        raise UnreadableDocument(f"not valid CSV ({exc})") from exc


def _reraised(exc: BaseException) -> BaseException:
    """``exc`` itself, unless it is Ctrl+C or an exit, which go on as they are."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise exc
    return exc


def _sniff(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _problem(exc: BaseException) -> str:
    kind = type(exc).__name__
    if kind == "PasswordError" or "password" in str(exc).lower() or "encrypt" in str(exc).lower():
        return "encrypted spreadsheet (a password is needed)"
    first = (str(exc).strip().splitlines() or [kind])[0][:200]
    return f"corrupt or not a spreadsheet ({first})"


_MIME = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    ".xlsb": "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
    ".xls": "application/vnd.ms-excel",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
