"""Loaders for plain-text formats: text and source code, Markdown, HTML, RTF, e-mail.

Bytes become text through :func:`decode_text`: a byte-order mark wins, then strict
UTF-8, then BOM-less UTF-16/32 recognised by their zero bytes, then a legacy code page
guessed by charset-normalizer. Binary files are refused with a reason.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import re
from html.parser import HTMLParser
from pathlib import Path

from archivist import Document, DocumentPart, Locator, UnreadableDocument

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

SOURCE_EXTENSIONS = (
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".java", ".kt", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash", ".ps1",
    ".sql", ".r", ".m", ".lua", ".pl", ".toml", ".yaml", ".yml", ".ini", ".cfg", ".json",
    ".xml", ".css", ".scss", ".tex", ".rst", ".csv", ".tsv", ".log",
)


def decode_text(data: bytes) -> str:
    """Text of ``data`` in whatever encoding it is in; UnreadableDocument if binary."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc)
            except UnicodeDecodeError as exc:
                raise UnreadableDocument(f"invalid {enc} text after its byte-order mark") from exc
    sample = data[:4096]
    if 0 in sample and len(sample) >= 4:
        for enc in _guess_wide(sample):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            if "\x00" not in text[:2048]:
                return text
        raise UnreadableDocument("binary file (not text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = from_bytes(data[:1 << 20])
    best = results.best()
    if best is None:
        raise UnreadableDocument("binary file or unknown text encoding")
    encoding = best.encoding
    # Western text is far more often cp1252 than its look-alikes (cp1250, latin-1...):
    # prefer it when the detector finds it as plausible as its first pick.
    for r in results:
        if r.encoding == "cp1252" and r.chaos <= best.chaos + 0.01:
            encoding = "cp1252"
            break
    text = data.decode(encoding, errors="replace")
    if "\x00" in text[:4096]:
        raise UnreadableDocument("binary file (not text)")
    return text


def _guess_wide(sample: bytes) -> list[str]:
    """BOM-less UTF-16/32 candidates judged by where the zero bytes fall."""
    n = len(sample) - len(sample) % 4
    quads = [sample[i:i + 4] for i in range(0, n, 4)]
    if quads and all(q[2:] == b"\0\0" for q in quads):
        return ["utf-32-le"]
    if quads and all(q[:2] == b"\0\0" for q in quads):
        return ["utf-32-be"]
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    return ["utf-16-le", "utf-16-be"] if odd >= even else ["utf-16-be", "utf-16-le"]


def _require_text(text: str) -> None:
    if not text.strip():
        raise UnreadableDocument("no text (empty or whitespace only)")


class TextLoader:
    """Plain text and source code, one part."""

    name = "text"
    extensions: tuple[str, ...] = (".txt", ".text") + SOURCE_EXTENSIONS

    def load(self, path: Path) -> Document:
        text = decode_text(Path(path).read_bytes()).replace("\r\n", "\n")
        _require_text(text)
        return Document(str(path), (DocumentPart(text, Locator(start=0, end=len(text))),),
                        title=None, mime_type="text/plain")


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


class MarkdownLoader:
    """Markdown, one part per heading-led section (the heading names the section)."""

    name = "markdown"
    extensions: tuple[str, ...] = (".md", ".markdown")

    def load(self, path: Path) -> Document:
        text = decode_text(Path(path).read_bytes()).replace("\r\n", "\n")
        _require_text(text)
        return Document(str(path), tuple(sections_by_heading(text)),
                        title=_first_heading(text), mime_type="text/markdown")


def _first_heading(text: str) -> str | None:
    m = _HEADING.search(text)
    return m.group(2) if m else None


def sections_by_heading(text: str) -> list[DocumentPart]:
    """Split Markdown text at headings; each part keeps its heading as ``section``."""
    marks = [(m.start(), m.group(2)) for m in _HEADING.finditer(text)]
    if not marks or marks[0][0] != 0:
        marks.insert(0, (0, None))
    parts = []
    for i, (start, heading) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        body = text[start:end]
        if body.strip():
            parts.append(DocumentPart(body, Locator(section=heading, start=0, end=len(body))))
    return parts


_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "header", "footer", "pre", "blockquote", "dd", "dt", "hr", "title",
    "td", "th",
}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if tag in ("script", "style", "noscript", "template", "head"):
            if tag != "head":
                self.skip += 1
        if tag == "title":
            self._in_title = True
        if tag == "pre":
            self.pre += 1
        if tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in ("p", "div", "h1", "h2", "h3", "table") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript", "template") and self.skip:
            self.skip -= 1
        if tag == "title":
            self._in_title = False
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _BLOCK_TAGS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data.strip()
            return
        if self.skip:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> tuple[str, str | None]:
    """(visible text, <title>) of an HTML document."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, parser.title or None


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.I)


def decode_html(data: bytes) -> str:
    m = _META_CHARSET.search(data[:4096])
    if m and not any(data.startswith(b) for b, _ in _BOMS):
        try:
            return data.decode(m.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)



class HtmlLoader:
    name = "html"
    extensions: tuple[str, ...] = (".html", ".htm", ".xhtml")

    def load(self, path: Path) -> Document:
        text, title = html_to_text(decode_html(Path(path).read_bytes()))
        _require_text(text)
        return Document(str(path), (DocumentPart(text, Locator(start=0, end=len(text))),),
                        title=title, mime_type="text/html")


class RtfLoader:
    name = "rtf"
    extensions: tuple[str, ...] = (".rtf",)

    def load(self, path: Path) -> Document:
        from striprtf.striprtf import rtf_to_text

        raw = Path(path).read_bytes()
        if not raw.lstrip().startswith(b"{\\rtf"):
            raise UnreadableDocument("not an RTF file (missing {\\rtf header)")
        text = rtf_to_text(raw.decode("latin-1"), errors="ignore")
        text = re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n")).strip()
        _require_text(text)
        return Document(str(path), (DocumentPart(text, Locator(start=0, end=len(text))),),
                        mime_type="application/rtf")


class EmailLoader:
    """RFC 822 e-mail: headers as the first part, then each text body part."""

    name = "email"
    extensions: tuple[str, ...] = (".eml",)

    def load(self, path: Path) -> Document:
        msg = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
        subject = str(msg.get("subject", "") or "").strip() or None
        header = "\n".join(f"{h}: {msg[h]}" for h in ("From", "To", "Date", "Subject") if msg[h])
        parts = [DocumentPart(header, Locator(section="headers", start=0, end=len(header)))] if header else []
        plain_seen = False
        bodies: list[tuple[str, str]] = []
        for part in msg.walk():
            if part.is_multipart() or part.get_content_disposition() == "attachment":
                continue
            ctype = part.get_content_type()
            if ctype not in ("text/plain", "text/html"):
                continue
            try:
                content = part.get_content()
            except (LookupError, UnicodeDecodeError, AssertionError):
                payload = part.get_payload(decode=True)  # bytes (or None) for a part that is not multipart
                content = decode_text(payload if isinstance(payload, bytes) else b"")
            if ctype == "text/html":
                content, _ = html_to_text(content)
            else:
                plain_seen = True
            bodies.append((ctype, content.replace("\r\n", "\n").strip()))
        for ctype, content in bodies:
            if ctype == "text/html" and plain_seen:
                continue  # the plain alternative says the same
            if content:
                parts.append(DocumentPart(content, Locator(section="body", start=0, end=len(content))))
        if not any(p.locator.section == "body" for p in parts):
            raise UnreadableDocument("e-mail without a text body")
        return Document(str(path), tuple(parts), title=subject, mime_type="message/rfc822",
                        metadata={"from": str(msg.get("from", "")), "date": str(msg.get("date", ""))})
