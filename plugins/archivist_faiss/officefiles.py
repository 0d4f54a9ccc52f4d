"""Loaders for zipped XML formats: docx, pptx, odt, epub, read with the standard library.

They are all a zip of XML parts, so no third-party parser is needed: this is faster
than python-docx/python-pptx, has no licence question, and a malformed part is caught
as a clear reason. Zip bombs are refused by the declared uncompressed size.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from archivist import Document, DocumentPart, Locator, UnreadableDocument
from archivist_faiss.textfiles import html_to_text

MAX_UNZIPPED = 512 * 1024 * 1024

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
TEXT_NS = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UnreadableDocument(f"corrupt or not a zip-based document ({exc})") from exc
    if sum(i.file_size for i in zf.infolist()) > MAX_UNZIPPED:
        zf.close()
        raise UnreadableDocument("unpacks to more than 512 MB (zip bomb?)")
    return zf


def read_xml(zf: zipfile.ZipFile, name: str) -> ET.Element:
    try:
        return ET.fromstring(zf.read(name))
    except KeyError as exc:
        raise UnreadableDocument(f"missing part {name}") from exc
    except (ET.ParseError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnreadableDocument(f"malformed part {name} ({exc})") from exc


def core_title(zf: zipfile.ZipFile) -> str | None:
    try:
        root = ET.fromstring(zf.read("docProps/core.xml"))
    except (KeyError, ET.ParseError, zipfile.BadZipFile):
        return None
    el = root.find(DC + "title")
    return el.text.strip() if el is not None and el.text and el.text.strip() else None


def _nonempty(parts: list[DocumentPart], what: str) -> tuple[DocumentPart, ...]:
    parts = [p for p in parts if p.text.strip()]
    if not parts:
        raise UnreadableDocument(f"no text in this {what}")
    return tuple(parts)


def _sections(blocks: list[tuple[str | None, str]]) -> list[DocumentPart]:
    """Group (heading-or-None, paragraph) blocks into one part per heading."""
    parts: list[DocumentPart] = []
    section: str | None = None
    lines: list[str] = []

    def flush() -> None:
        text = "\n\n".join(lines).strip()
        if text:
            parts.append(DocumentPart(text, Locator(section=section, start=0, end=len(text))))

    for heading, text in blocks:
        if heading is not None:
            flush()
            section, lines = heading, [heading]
        elif text.strip():
            lines.append(text)
    flush()
    return parts


class DocxLoader:
    name = "docx"
    extensions: tuple[str, ...] = (".docx", ".docm")

    def load(self, path: Path) -> Document:
        with open_zip(path) as zf:
            root = read_xml(zf, "word/document.xml")
            title = core_title(zf)
        body = root.find(W + "body")
        blocks: list[tuple[str | None, str]] = []
        for el in (body if body is not None else []):
            if el.tag == W + "p":
                text = "".join(t.text or "" for t in el.iter(W + "t"))
                style = el.find(f"{W}pPr/{W}pStyle")
                name = style.get(W + "val", "") if style is not None else ""
                if text.strip() and (name.lower().startswith("heading") or name.lower() == "title"):
                    blocks.append((text.strip(), ""))
                else:
                    blocks.append((None, text))
            elif el.tag == W + "tbl":
                for row in el.iter(W + "tr"):
                    cells = ["".join(t.text or "" for t in c.iter(W + "t")) for c in row.iter(W + "tc")]
                    blocks.append((None, " | ".join(c.strip() for c in cells)))
        return Document(str(path), _nonempty(_sections(blocks), "document"), title=title,
                        mime_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")


class PptxLoader:
    """One part per slide (``page`` is the slide number), notes included."""

    name = "pptx"
    extensions: tuple[str, ...] = (".pptx",)

    def load(self, path: Path) -> Document:
        with open_zip(path) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)]
            if not names:
                raise UnreadableDocument("no slides found (malformed presentation)")
            names.sort(key=lambda n: int(re.findall(r"\d+", n)[-1]))
            title = core_title(zf)
            parts = []
            for n in names:
                number = int(re.findall(r"\d+", n)[-1])
                root = read_xml(zf, n)
                paras = ["".join(t.text or "" for t in p.iter(A + "t")) for p in root.iter(A + "p")]
                notes_name = f"ppt/notesSlides/notesSlide{number}.xml"
                if notes_name in zf.namelist():
                    notes = read_xml(zf, notes_name)
                    paras += ["".join(t.text or "" for t in p.iter(A + "t")) for p in notes.iter(A + "p")]
                text = "\n".join(p for p in paras if p.strip())
                parts.append(DocumentPart(text, Locator(page=number, section=f"slide {number}",
                                                        start=0, end=len(text))))
        return Document(str(path), _nonempty(parts, "presentation"), title=title,
                        mime_type="application/vnd.openxmlformats-officedocument.presentationml.presentation")


class OdtLoader:
    name = "odt"
    extensions: tuple[str, ...] = (".odt",)

    def load(self, path: Path) -> Document:
        with open_zip(path) as zf:
            root = read_xml(zf, "content.xml")
            try:
                meta = ET.fromstring(zf.read("meta.xml"))
                t = meta.find(f".//{DC}title")
                title = t.text.strip() if t is not None and t.text else None
            except (KeyError, ET.ParseError):
                title = None
        blocks: list[tuple[str | None, str]] = []
        for el in root.iter():
            if el.tag == TEXT_NS + "h":
                blocks.append(("".join(el.itertext()).strip() or None, ""))
            elif el.tag == TEXT_NS + "p":
                blocks.append((None, _odt_text(el)))
        return Document(str(path), _nonempty(_sections(blocks), "document"), title=title,
                        mime_type="application/vnd.oasis.opendocument.text")


def _odt_text(el: ET.Element) -> str:
    out = [el.text or ""]
    for child in el:
        if child.tag == TEXT_NS + "s":
            out.append(" " * int(child.get(TEXT_NS + "c", "1")))
        elif child.tag in (TEXT_NS + "tab",):
            out.append("\t")
        elif child.tag == TEXT_NS + "line-break":
            out.append("\n")
        elif child.tag != TEXT_NS + "p":
            out.append(_odt_text(child))
        out.append(child.tail or "")
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
                    raw = zf.read(name)
                except KeyError:
                    continue
                text, chapter = html_to_text(raw.decode("utf-8", errors="replace"))
                parts.append(DocumentPart(text, Locator(section=chapter or href, start=0,
                                                        end=len(text))))
        return Document(str(path), _nonempty(parts, "book"), title=title, mime_type="application/epub+zip")
