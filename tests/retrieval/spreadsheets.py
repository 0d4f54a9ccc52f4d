"""Small xlsx and ods files written in a test: the few XML parts a spreadsheet needs
(strings inline, numbers as numbers), so no binary fixture is committed and no writer
library is needed."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

Sheets = dict[str, list[list[Any]]]

XML = '<?xml version="1.0" encoding="UTF-8"?>'
PKG = "http://schemas.openxmlformats.org/package/2006"
OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SML = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
ODF = "urn:oasis:names:tc:opendocument:xmlns"


def col(n: int) -> str:
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def write_xlsx(path: Path, sheets: Sheets) -> Path:
    """``sheets``: {name: rows}, each row a list of values (None: an empty cell), from A1."""
    n = range(1, len(sheets) + 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", f'{XML}<Types xmlns="{PKG}/content-types">'
                   f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
                   + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{CT}.worksheet+xml"/>'
                             for i in n) + "</Types>")
        z.writestr("_rels/.rels", f'{XML}<Relationships xmlns="{PKG}/relationships">'
                   f'<Relationship Id="rId1" Type="{OFFICE}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'{XML}<workbook xmlns="{SML}" xmlns:r="{OFFICE}"><sheets>'
                   + "".join(f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
                             for i, name in enumerate(sheets, 1)) + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", f'{XML}<Relationships xmlns="{PKG}/relationships">'
                   + "".join(f'<Relationship Id="rId{i}" Type="{OFFICE}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                             for i in n) + "</Relationships>")
        for i, rows in enumerate(sheets.values(), 1):
            body = []
            for r, row in enumerate(rows, 1):
                cells = []
                for c, v in enumerate(row):
                    ref = f"{col(c)}{r}"
                    if v is None:
                        continue
                    if isinstance(v, (int, float)):
                        cells.append(f'<c r="{ref}"><v>{v}</v></c>')
                    else:
                        cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(v))}</t></is></c>')
                body.append(f'<row r="{r}">{"".join(cells)}</row>')
            z.writestr(f"xl/worksheets/sheet{i}.xml",
                       f'{XML}<worksheet xmlns="{SML}"><sheetData>{"".join(body)}</sheetData></worksheet>')
    return path


def write_ods(path: Path, sheets: Sheets) -> Path:
    """``sheets``: {name: rows}, as for :func:`write_xlsx`."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml",
                   f'{XML}<manifest:manifest xmlns:manifest="{ODF}:manifest:1.0" manifest:version="1.2">'
                   '<manifest:file-entry manifest:full-path="/" '
                   'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                   '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                   "</manifest:manifest>")
        tables = []
        for name, rows in sheets.items():
            trs = []
            for row in rows:
                tds = []
                for v in row:
                    if v is None:
                        tds.append("<table:table-cell/>")
                    elif isinstance(v, (int, float)):
                        tds.append(f'<table:table-cell office:value-type="float" office:value="{v}">'
                                   f"<text:p>{v}</text:p></table:table-cell>")
                    else:
                        tds.append(f'<table:table-cell office:value-type="string"><text:p>{escape(str(v))}</text:p>'
                                   "</table:table-cell>")
                trs.append(f'<table:table-row>{"".join(tds)}</table:table-row>')
            tables.append(f'<table:table table:name="{escape(name)}">{"".join(trs)}</table:table>')
        z.writestr("content.xml",
                   f'{XML}<office:document-content xmlns:office="{ODF}:office:1.0" xmlns:table="{ODF}:table:1.0" '
                   f'xmlns:text="{ODF}:text:1.0" office:version="1.2"><office:body><office:spreadsheet>'
                   + "".join(tables) + "</office:spreadsheet></office:body></office:document-content>")
    return path
