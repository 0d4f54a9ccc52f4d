"""Jupyter notebooks (``.ipynb``) read with the standard library's JSON parser.

A notebook is a JSON document with a list of cells. Markdown and code cells become one
:class:`archivist.DocumentPart` each, located as ``cell 3 (code)``; the text a code
cell printed (streams, plain-text results, errors) becomes a part of its own, located
as ``cell 3 (output)``, so a citation says whether the answer came from the code or
from what it printed. Cells are numbered from 1 in notebook order, counting every cell,
as a reader counts them in Jupyter.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archivist import Document, DocumentPart, Locator, UnreadableDocument

MIME_TYPE = "application/x-ipynb+json"
# Output longer than this (a training log, a printed data frame) is cut: it would
# crowd out the cells themselves in search results.
MAX_OUTPUT_CHARS = 20_000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Cell:
    """One cell: its 1-based number, its type, its source and its outputs' text."""

    number: int
    kind: str  # "markdown", "code", "raw" or whatever the file says
    source: str
    output: str = ""


@dataclass(frozen=True)
class NotebookStats:
    """What ``archivist notebooks stats`` reports."""

    cells: int
    markdown_cells: int
    code_cells: int
    other_cells: int
    words: int  # in markdown cells, markup aside
    code_lines: int  # non-blank lines of code cells
    outputs: int  # code cells that show an output

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook's JSON object; :class:`UnreadableDocument` says why when it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"cannot read the file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UnreadableDocument("empty file, not a notebook")
    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UnreadableDocument("not a notebook: the file is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise UnreadableDocument(
            f"not a notebook: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})"
        ) from exc
    if not isinstance(notebook, dict) or not isinstance(_raw_cells(notebook), list):
        raise UnreadableDocument("not a notebook: JSON without a list of cells")
    return notebook


def cells(notebook: dict[str, Any]) -> list[Cell]:
    """Every cell of ``notebook`` (nbformat 4, or 3 with its worksheets), in order."""
    found = []
    for number, raw in enumerate(_raw_cells(notebook) or [], start=1):
        if not isinstance(raw, dict):
            continue
        kind = str(raw.get("cell_type", "")) or "unknown"
        source = _text(raw.get("source", raw.get("input", "")))
        output = _outputs_text(raw.get("outputs")) if kind == "code" else ""
        found.append(Cell(number, kind, source, output))
    return found


def load_notebook(path: Path) -> Document:
    """The notebook at ``path`` as a :class:`archivist.Document` with one part per cell."""
    notebook = read_notebook(path)
    all_cells = cells(notebook)
    parts: list[DocumentPart] = []
    for cell in all_cells:
        if cell.kind not in ("markdown", "code"):
            continue  # raw cells hold conversion directives, not prose
        for text, label in ((cell.source, cell.kind), (cell.output, "output")):
            text = text.strip()
            if text:
                locator = Locator(section=f"cell {cell.number} ({label})", start=0, end=len(text))
                parts.append(DocumentPart(text, locator))
    if not parts:
        raise UnreadableDocument("the notebook has no text in its markdown or code cells")
    meta = notebook.get("metadata") if isinstance(notebook.get("metadata"), dict) else {}
    return Document(
        path=str(path),
        parts=tuple(parts),
        title=_title(all_cells, meta),
        mime_type=MIME_TYPE,
        metadata={
            "nbformat": notebook.get("nbformat"),
            "language": _language(meta),
            "cells": len(all_cells),
        },
    )


def notebook_stats(notebook: dict[str, Any]) -> NotebookStats:
    """Counts of cells, markdown words and code lines."""
    all_cells = cells(notebook)
    markdown = [c for c in all_cells if c.kind == "markdown"]
    code = [c for c in all_cells if c.kind == "code"]
    return NotebookStats(
        cells=len(all_cells),
        markdown_cells=len(markdown),
        code_cells=len(code),
        other_cells=len(all_cells) - len(markdown) - len(code),
        words=sum(len(_WORD.findall(c.source)) for c in markdown),
        code_lines=sum(1 for c in code for line in c.source.splitlines() if line.strip()),
        outputs=sum(1 for c in code if c.output.strip()),
    )


class NotebookLoader:
    """The :class:`archivist.DocumentLoader` this plugin registers."""

    name = "notebooks"
    extensions = (".ipynb",)

    def load(self, path: Path) -> Document:
        return load_notebook(path)


def _raw_cells(notebook: dict[str, Any]) -> Any:
    if "cells" in notebook:
        return notebook["cells"]
    worksheets = notebook.get("worksheets")  # nbformat 3
    if isinstance(worksheets, list):
        return [c for w in worksheets if isinstance(w, dict) for c in w.get("cells") or []]
    return None


def _text(value: Any) -> str:
    """Notebook strings are a string or a list of lines (each keeping its newline)."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _outputs_text(outputs: Any) -> str:
    pieces = []
    for out in outputs if isinstance(outputs, list) else []:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            pieces.append(_text(out.get("text")))
        elif kind in ("execute_result", "display_data", "pyout"):
            data = out.get("data") if isinstance(out.get("data"), dict) else out
            pieces.append(_text(data.get("text/plain", data.get("text"))))
        elif kind in ("error", "pyerr"):
            pieces.append(f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
    text = _ANSI.sub("", "\n".join(p.rstrip("\n") for p in pieces if p.strip()))
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + "\n[output cut]"
    return text


def _title(all_cells: list[Cell], meta: dict[str, Any]) -> str | None:
    if isinstance(meta.get("title"), str) and meta["title"].strip():
        return meta["title"].strip()
    for cell in all_cells:
        if cell.kind == "markdown":
            match = _HEADING.search(cell.source)
            if match:
                return match.group(1)
    return None


def _language(meta: dict[str, Any]) -> str | None:
    for key in ("kernelspec", "language_info"):
        section = meta.get(key)
        if isinstance(section, dict):
            name = section.get("language") or section.get("name")
            if isinstance(name, str):
                return name
    return None
