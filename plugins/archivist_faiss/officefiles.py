"""Loaders for zipped XML formats: docx, pptx, odt, epub, read with the standard library.

They are all a zip of XML parts, so no third-party parser is needed: this is faster
than python-docx/python-pptx, has no licence question, and a malformed part is caught
as a clear reason.

What a zip may cost is bounded three ways. The sizes its directory declares are checked
first (:data:`MAX_UNZIPPED` in all, :data:`MAX_PART` for one part, :data:`MAX_ENTRIES`
parts), and a part is never unpacked past its declared size. The big XML parts are
parsed as they are unpacked (:func:`stream_xml`), each paragraph dropped once its text
is taken, and paragraphs are joined as they come, so a document costs about the memory
of its text however much XML carries it. And counts the XML states are clamped: an
ODT's ``<text:s text:c="2000000000"/>`` is :data:`MAX_SPACES` spaces, not 2 GB of them.
"""

from __future__ import annotations

import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree import ElementTree as ET

from archivist import Document, DocumentPart, Locator, UnreadableDocument
from archivist_faiss.textfiles import html_to_text

MAX_UNZIPPED = 512 * 1024 * 1024  # declared, all parts together
MAX_PART = 128 * 1024 * 1024  # declared, one part
MAX_ENTRIES = 100_000  # parts in one zip
MAX_SPACES = 64  # what one <text:s text:c="N"/> may stand for

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
TEXT_NS = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"

# What a damaged zip or XML part raises on the way (RuntimeError: a part flagged encrypted).
_BROKEN = (ET.ParseError, zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, ValueError,
           RuntimeError, struct.error)


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, struct.error) as exc:
        raise UnreadableDocument(f"corrupt or not a zip-based document ({exc})") from exc
    infos = zf.infolist()
    problem = None
    if len(infos) > MAX_ENTRIES:
        problem = f"holds {len(infos):,} parts, more than the {MAX_ENTRIES:,} a document may have"
    elif sum(i.file_size for i in infos) > MAX_UNZIPPED:
        problem = (f"unpacks to {sum(i.file_size for i in infos) / 2**20:,.1f} MiB, over the "
                   f"{MAX_UNZIPPED >> 20} MiB a document may hold (a zip bomb?)")
    if problem:
        zf.close()
        raise UnreadableDocument(problem)
    return zf


class _Capped:
    """A part as it is unpacked, refused past :data:`MAX_PART` bytes whatever its header said."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size if size is not None and size >= 0 else 1 << 16)
        self.read_bytes += len(data)
        if self.read_bytes > MAX_PART:
            raise UnreadableDocument(_too_big(self.name, self.read_bytes))
        return data


def _too_big(name: str, size: int) -> str:
    return (f"its part {name} unpacks to {size / 2**20:,.1f} MiB, over the {MAX_PART >> 20} MiB "
            "one part may hold (a zip bomb?)")


def open_part(zf: zipfile.ZipFile, name: str) -> _Capped:
    try:
        info = zf.getinfo(name)
    except KeyError as exc:
        raise UnreadableDocument(f"missing part {name}") from exc
    if info.file_size > MAX_PART:
        raise UnreadableDocument(_too_big(name, info.file_size))
    if info.flag_bits & 0x1:
        raise UnreadableDocument(f"its part {name} is encrypted (a password is needed)")
    try:
        return _Capped(zf.open(info), name)
    except _BROKEN as exc:
        raise UnreadableDocument(f"malformed part {name} ({exc})") from exc


def read_part(zf: zipfile.ZipFile, name: str) -> bytes:
    """The bytes of part ``name`` (KeyError when there is none), within :data:`MAX_PART`."""
    zf.getinfo(name)  # KeyError when it is missing
    stream = open_part(zf, name)
    chunks = []
    try:
        while data := stream.read(1 << 20):
            chunks.append(data)
    except _BROKEN as exc:
        raise UnreadableDocument(f"malformed part {name} ({exc})") from exc
    return b"".join(chunks)


def read_xml(zf: zipfile.ZipFile, name: str) -> ET.Element:
    """A small part, whole (a package's directory, a title); big ones go through :func:`stream_xml`."""
    try:
        data = read_part(zf, name)
    except KeyError as exc:
        raise UnreadableDocument(f"missing part {name}") from exc
    try:
        return ET.fromstring(data)
    except _BROKEN as exc:
        raise UnreadableDocument(f"malformed part {name} ({exc})") from exc


def stream_xml(zf: zipfile.ZipFile, name: str, *, depth: int | None = None,
               tag: str | None = None) -> Iterator[ET.Element]:
    """The elements of part ``name`` at ``depth`` (the root is at 1) or with ``tag``,
    each whole when it is yielded and emptied and dropped once the caller asks for the
    next one, while the part is unpacked and parsed (so it is never all in memory)."""
    stream = open_part(zf, name)
    stack: list[ET.Element] = []
    try:
        for event, el in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                stack.append(el)
                continue
            level = len(stack)
            stack.pop()
            if (depth is not None and level == depth) or (tag is not None and el.tag == tag):
                yield el
                el.clear()
                if stack:
                    stack[-1].remove(el)
    except _BROKEN as exc:
        raise UnreadableDocument(f"malformed part {name} ({exc})") from exc


def core_title(zf: zipfile.ZipFile) -> str | None:
    try:
        root = ET.fromstring(read_part(zf, "docProps/core.xml"))
    except (KeyError, UnreadableDocument, *_BROKEN):
        return None
    el = root.find(DC + "title")
    return el.text.strip() if el is not None and el.text and el.text.strip() else None


def _nonempty(parts: list[DocumentPart], what: str) -> tuple[DocumentPart, ...]:
    parts = [p for p in parts if p.text.strip()]
    if not parts:
        raise UnreadableDocument(f"no text in this {what}")
    return tuple(parts)


class Sections:
    """Paragraphs grouped into one part per heading (the heading names it), joined as
    they come: a document of millions of tiny paragraphs costs its text, not a list of
    millions of strings."""

    JOIN_EVERY = 4096

    def __init__(self) -> None:
        self.parts: list[DocumentPart] = []
        self.section: str | None = None
        self.lines: list[str] = []

    def heading(self, text: str) -> None:
        self._flush()
        self.section, self.lines = text, [text]

    def paragraph(self, text: str) -> None:
        if text.strip():
            self.lines.append(text)
            if len(self.lines) >= self.JOIN_EVERY:
                self.lines = ["\n\n".join(self.lines)]

    def _flush(self) -> None:
        text = "\n\n".join(self.lines).strip()
        if text:
            self.parts.append(DocumentPart(text, Locator(section=self.section, start=0, end=len(text))))

    def result(self) -> list[DocumentPart]:
        self._flush()
        self.lines = []
        return self.parts


class DocxLoader:
    name = "docx"
    extensions: tuple[str, ...] = (".docx", ".docm")

    def load(self, path: Path) -> Document:
        sections = Sections()
        with open_zip(path) as zf:
            title = core_title(zf)
            for el in stream_xml(zf, "word/document.xml", depth=3):  # w:document/w:body/<here>
                if el.tag == W + "p":
                    text = "".join(t.text or "" for t in el.iter(W + "t"))
                    style = el.find(f"{W}pPr/{W}pStyle")
                    name = style.get(W + "val", "") if style is not None else ""
                    if text.strip() and (name.lower().startswith("heading") or name.lower() == "title"):
                        sections.heading(text.strip())
                    else:
                        sections.paragraph(text)
                elif el.tag == W + "tbl":
                    for row in el.iter(W + "tr"):
                        cells = ["".join(t.text or "" for t in c.iter(W + "t")) for c in row.iter(W + "tc")]
                        sections.paragraph(" | ".join(c.strip() for c in cells))
        return Document(str(path), _nonempty(sections.result(), "document"), title=title,
                        mime_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")


_SLIDE = re.compile(r"ppt/slides/slide(\d+)\.xml")
# More slides than any deck has: a number past this is not a slide number but a hostile
# file's (99999999999999999999 did not fit the index's page column).
MAX_SLIDE_NUMBER = 1_000_000


def _slide_number(digits: str) -> int | None:
    number = int(digits) if len(digits) <= 9 else MAX_SLIDE_NUMBER + 1
    return number if number <= MAX_SLIDE_NUMBER else None


class PptxLoader:
    """One part per slide (``page`` is the slide number), notes included."""

    name = "pptx"
    extensions: tuple[str, ...] = (".pptx",)

    def load(self, path: Path) -> Document:
        with open_zip(path) as zf:
            slides = [(_slide_number(m.group(1)), n) for n in zf.namelist() if (m := _SLIDE.fullmatch(n))]
            if not slides:
                raise UnreadableDocument("no slides found (malformed presentation)")
            slides.sort(key=lambda s: (s[0] is None, s[0] or 0, s[1]))
            names = set(zf.namelist())
            title = core_title(zf)
            parts = []
            for number, n in slides:
                paras = ["".join(t.text or "" for t in p.iter(A + "t")) for p in stream_xml(zf, n, tag=A + "p")]
                notes_name = f"ppt/notesSlides/notesSlide{number}.xml"
                if number is not None and notes_name in names:
                    paras += ["".join(t.text or "" for t in p.iter(A + "t"))
                              for p in stream_xml(zf, notes_name, tag=A + "p")]
                text = "\n".join(p for p in paras if p.strip())
                parts.append(DocumentPart(text, Locator(page=number, section=f"slide {number}" if number else "slide",
                                                        start=0, end=len(text))))
        return Document(str(path), _nonempty(parts, "presentation"), title=title,
                        mime_type="application/vnd.openxmlformats-officedocument.presentationml.presentation")


class OdtLoader:
    name = "odt"
    extensions: tuple[str, ...] = (".odt",)

    def load(self, path: Path) -> Document:
        sections = Sections()
        with open_zip(path) as zf:
            try:
                meta = ET.fromstring(read_part(zf, "meta.xml"))
                t = meta.find(f".//{DC}title")
                title = t.text.strip() if t is not None and t.text else None
            except (KeyError, UnreadableDocument, *_BROKEN):
                title = None
            # office:document-content/office:body/office:text/<here>, each with what it holds
            for top in stream_xml(zf, "content.xml", depth=4):
                for el in top.iter():
                    if el.tag == TEXT_NS + "h":
                        heading = "".join(el.itertext()).strip()
                        if heading:
                            sections.heading(heading)
                    elif el.tag == TEXT_NS + "p":
                        sections.paragraph(_odt_text(el))
        return Document(str(path), _nonempty(sections.result(), "document"), title=title,
                        mime_type="application/vnd.oasis.opendocument.text")


def _spaces(el: ET.Element) -> str:
    try:
        count = int(el.get(TEXT_NS + "c", "1"))
    except ValueError:
        count = 1
    return " " * max(1, min(count, MAX_SPACES))


def _odt_text(el: ET.Element) -> str:
    """A paragraph's text: spans and links followed, spaces, tabs and line breaks
    spelled out, paragraphs nested in it (a note's) left to be read on their own.
    Iterative, so a hostile nesting depth cannot exhaust the stack."""
    out = [el.text or ""]
    todo: list[ET.Element | str] = list(reversed(el))  # elements to read, or text to add, last first
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if item.tag == TEXT_NS + "s":
            out.append(_spaces(item))
        elif item.tag == TEXT_NS + "tab":
            out.append("\t")
        elif item.tag == TEXT_NS + "line-break":
            out.append("\n")
        elif item.tag != TEXT_NS + "p":
            out.append(item.text or "")
            todo.append(item.tail or "")
            todo.extend(reversed(item))
            continue
        out.append(item.tail or "")
    return "".join(out)


class EpubLoader:
    """One part per spine item (chapter); ``section`` is the chapter's title or file."""

    name = "epub"
    extensions: tuple[str, ...] = (".epub",)

    def load(self, path: Path) -> Document:
        with open_zip(path) as zf:
            container = read_xml(zf, "META-INF/container.xml")
            rootfile = next((e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile")), None)
            if not rootfile:
                raise UnreadableDocument("EPUB without a package document")
            opf = read_xml(zf, rootfile)
            base = posixpath.dirname(rootfile)
            manifest = {e.get("id"): e.get("href") for e in opf.iter() if e.tag.endswith("}item")}
            spine = [e.get("idref") for e in opf.iter() if e.tag.endswith("}itemref")]
            t = next((e for e in opf.iter() if e.tag == DC + "title"), None)
            title = t.text.strip() if t is not None and t.text else None
            parts = []
            for idref in spine:
                href = manifest.get(idref)
                if not href:
                    continue
                name = posixpath.normpath(posixpath.join(base, href))
                try:
                    raw = read_part(zf, name)
                except KeyError:
                    continue
                text, chapter = html_to_text(raw.decode("utf-8", errors="replace"))
                parts.append(DocumentPart(text, Locator(section=chapter or href, start=0,
                                                        end=len(text))))
        return Document(str(path), _nonempty(parts, "book"), title=title, mime_type="application/epub+zip")
