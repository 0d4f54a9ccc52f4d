"""Showing and opening the sources an answer cites, and those it only consulted.

A citation opens in the user's own viewer through ``QDesktopServices``. For a PDF we
ask for the cited page with the ``#page=N`` fragment (Adobe's open parameters, which
browsers and most PDF viewers honour); where the platform's opener refuses a URL with
a fragment we fall back to opening the file itself, so a click always does something.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from archivist.types import Citation, Passage


def citation_url(citation: Citation) -> QUrl:
    """``file://`` URL of the cited file, with ``#page=N`` for a PDF page."""
    url = QUrl.fromLocalFile(str(Path(citation.path)))
    if citation.page and citation.path.lower().endswith(".pdf"):
        url.setFragment(f"page={citation.page}")
    return url


def open_citation(citation: Citation) -> bool:
    """Open the cited file (at its page when the platform allows); False if nothing opened."""
    url = citation_url(citation)
    if QDesktopServices.openUrl(url):
        return True
    if url.hasFragment():
        # None is Qt's null string, which removes the fragment ("" would leave a lone "#");
        # the stubs allow only str, and adjusted(RemoveFragment) is refused by PySide6.
        url.setFragment(None)  # type: ignore[arg-type]
        return QDesktopServices.openUrl(url)
    return False


def citation_from(data: Any) -> Citation:
    """A Citation from the core's dataclass or the dict the store keeps."""
    if isinstance(data, Citation):
        return data
    return Citation(
        n=int(data["n"]),
        path=str(data["path"]),
        page=data.get("page"),
        start=int(data.get("start", 0)),
        end=int(data.get("end", 0)),
        snippet=str(data.get("snippet", "")),
        score=float(data.get("score", 0.0)),
        # Stored before the flag existed: such answers were shown as citing it.
        cited=bool(data.get("cited", True)),
        matched=bool(data.get("matched", False)),
    )


def citation_from_passage(n: int, passage: Passage) -> Citation:
    """What a numbered source is known as while the answer is still streaming."""
    return Citation(
        n=n,
        path=passage.path,
        page=passage.locator.page,
        start=passage.locator.start,
        end=passage.locator.end,
        snippet=" ".join(passage.text.split())[:300],
        score=passage.score,
    )


def source_label(citation: Citation) -> str:
    """``[n] name.pdf, p. 3``: short enough for a chip under the answer."""
    name = Path(citation.path).name or citation.path
    page = f", p. {citation.page}" if citation.page else ""
    return f"[{citation.n}] {name}{page}"


def consulted_label(citation: Citation) -> str:
    """``name.pdf, p. 3``: a source the answer does not cite gets no ``[n]`` to look like one."""
    name = Path(citation.path).name or citation.path
    page = f", p. {citation.page}" if citation.page else ""
    return f"{name}{page}"


def sources_html(citations: list[Citation]) -> str:
    """The line under an answer: its citations, then the sources it does not cite: those
    whose words it repeats (matched), then the others it was given (consulted).

    Every kind links to its passage (hover) and file (click), so an answer that cites
    nothing can still be checked; only the cited ones are called sources of the answer.
    """
    parts = []
    cited = [c for c in citations if c.cited]
    matched = [c for c in citations if not c.cited and c.matched]
    consulted = [c for c in citations if not c.cited and not c.matched]
    if cited:
        links = " &nbsp; ".join(f"<a href='cite:{c.n}'>{html.escape(source_label(c))}</a>" for c in cited)
        parts.append(f"<b>Sources</b> &nbsp; {links}")
    if matched:
        links = " &nbsp; ".join(f"<a href='cite:{c.n}'>{html.escape(consulted_label(c))}</a>" for c in matched)
        parts.append(f"<b>Matched</b> <i>(not cited; the answer repeats their words)</i> &nbsp; {links}")
    if consulted:
        links = " &nbsp; ".join(f"<a href='cite:{c.n}'>{html.escape(consulted_label(c))}</a>" for c in consulted)
        parts.append(f"<b>Consulted</b> <i>(not cited in the answer)</i> &nbsp; {links}")
    return "<br>".join(parts)


def citation_tooltip(citation: Citation) -> str:
    """The passage behind ``[n]``, as rich text for a tooltip."""
    page = f" — page {citation.page}" if citation.page else ""
    title = (f"[{citation.n}] " if citation.cited else
             "Not cited, the answer repeats its words: " if citation.matched else "Consulted, not cited: ")
    return (
        f"<p><b>{title}{html.escape(Path(citation.path).name)}</b>{page}</p>"
        f"<p>{html.escape(citation.snippet)}</p>"
        f"<p><i>{html.escape(citation.path)}</i><br>Click to open.</p>"
    )
