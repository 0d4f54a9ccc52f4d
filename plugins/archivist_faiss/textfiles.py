"""Loaders for plain-text formats: text and source code, Markdown, HTML, RTF, e-mail.

Bytes become text through :func:`decode_text`: a byte-order mark wins, then strict
UTF-8, then BOM-less UTF-16/32 recognised by their zero bytes, then a legacy code page
guessed by charset-normalizer. Binary files are refused with a reason.

Files are read and decoded in pieces of :data:`BLOCK` bytes (:func:`read_text`), so a
file costs about the memory of its text, not several copies of it; a plain-text file
longer than :data:`PART_CHARS` characters becomes parts of about that size, cut at line
ends, so that no step after it handles one huge string.
"""

from __future__ import annotations

import codecs
import email
import email.message
import email.policy
import io
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

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
    ".xml", ".css", ".scss", ".tex", ".rst", ".log",
)


BLOCK = 1 << 20  # bytes read and decoded at a time
PART_CHARS = 1 << 20  # a plain-text file longer than this is cut into parts about this long

# Control characters text does not use (tab, line and page breaks, backspace and escape
# do occur: man pages, coloured logs); more than one byte in 20 of them is binary data.
_CONTROL_BYTES = bytes([*range(1, 8), *range(14, 27), *range(28, 32), 127])


def looks_binary(sample: bytes) -> bool:
    """Whether bytes that are not UTF-16/32 are binary data rather than text: a zero
    byte, or more than one byte in 20 a control character that text does not use."""
    if b"\0" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls * 20 > len(sample)


def decode_text(data: bytes) -> str:
    """Text of ``data`` in whatever encoding it is in; UnreadableDocument if binary."""
    return "".join(_decode(lambda: io.BytesIO(data)))


def read_text(path: Path) -> Iterator[str]:
    """The text of the file at ``path`` in pieces of at most :data:`BLOCK` characters,
    decoded as :func:`decode_text` decodes, with Windows line ends made ``\\n``."""
    held = ""
    pieces = _decode(lambda: open(path, "rb"))
    pieces.reverse()
    while pieces:  # each piece let go as it is handed on: the text is held once, not twice
        piece = held + pieces.pop()
        held = "\r" if piece.endswith("\r") else ""
        yield piece[:len(piece) - len(held)].replace("\r\n", "\n")
    if held:
        yield held


def _decode(opener: Callable[[], BinaryIO]) -> list[str]:
    """The decoded pieces of what ``opener`` opens (it may be opened more than once: the
    first encoding that fails part way is given up and the next one read from the start)."""
    with opener() as stream:
        head = stream.read(BLOCK)
    for bom, enc in _BOMS:
        if head.startswith(bom):
            try:
                return _decoded_pieces(opener, enc, "strict", len(bom))
            except UnicodeDecodeError as exc:
                raise UnreadableDocument(f"invalid {enc} text after its byte-order mark") from exc
    sample = head[:4096]
    if 0 in sample and len(sample) >= 4:
        for enc in _guess_wide(sample):
            try:
                pieces = _decoded_pieces(opener, enc, "strict")
            except UnicodeDecodeError:
                continue
            if not pieces or "\x00" not in pieces[0][:2048]:
                return pieces
        raise UnreadableDocument("binary file (not text)")
    try:
        return _decoded_pieces(opener, "utf-8", "strict")
    except UnicodeDecodeError:
        pass
    if looks_binary(sample):
        raise UnreadableDocument("binary file (not text)")
    from charset_normalizer import from_bytes

    results = from_bytes(head)
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
    pieces = _decoded_pieces(opener, encoding, "replace")
    if pieces and "\x00" in pieces[0][:4096]:
        raise UnreadableDocument("binary file (not text)")
    return pieces


def _decoded_pieces(opener: Callable[[], BinaryIO], encoding: str, errors: str, skip: int = 0) -> list[str]:
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    pieces = []
    with opener() as stream:
        stream.seek(skip)
        while block := stream.read(BLOCK):
            if piece := decoder.decode(block):
                pieces.append(piece)
        if tail := decoder.decode(b"", final=True):
            pieces.append(tail)
    return pieces


def text_parts(pieces: Iterator[str] | list[str]) -> list[DocumentPart]:
    """Parts of about :data:`PART_CHARS` characters, cut at line ends (else at a space,
    else anywhere), whose locators are offsets into the whole text; whitespace-only
    parts are left out."""
    parts: list[DocumentPart] = []
    offset = 0
    buffer = ""

    def emit(text: str) -> None:
        nonlocal offset
        if text.strip():
            parts.append(DocumentPart(text, Locator(start=offset, end=offset + len(text))))
        offset += len(text)

    for piece in pieces:
        buffer += piece
        while len(buffer) > PART_CHARS:
            cut = _cut_at(buffer, PART_CHARS)
            emit(buffer[:cut])
            buffer = buffer[cut:]
    emit(buffer)
    return parts


def _cut_at(text: str, limit: int) -> int:
    """Where to end a piece of ``text`` of at most ``limit`` characters: after its last
    line end in the second half, else after its last space there, else at ``limit``."""
    for sep in ("\n", " "):
        cut = text.rfind(sep, limit // 2, limit)
        if cut >= 0:
            return cut + 1
    return limit


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
        parts = text_parts(read_text(Path(path)))
        if not parts:
            raise UnreadableDocument("no text (empty or whitespace only)")
        return Document(str(path), tuple(parts), title=None, mime_type="text/plain")


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


class MarkdownLoader:
    """Markdown, one part per heading-led section (the heading names the section)."""

    name = "markdown"
    extensions: tuple[str, ...] = (".md", ".markdown")

    def load(self, path: Path) -> Document:
        text = "".join(read_text(Path(path)))
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


# Codecs a page may not declare: browsers do not decode them (UTF-7 smuggled scripts past
# filters, and made lone surrogates here), and the escape codecs read backslashes as code.
_NOT_WEB_CHARSETS = {"utf-7", "unicode-escape", "raw-unicode-escape", "idna", "punycode"}


def decode_html(data: bytes) -> str:
    m = _META_CHARSET.search(data[:4096])
    if m and not any(data.startswith(b) for b, _ in _BOMS):
        try:
            name = m.group(1).decode("ascii")
            if codecs.lookup(name).name not in _NOT_WEB_CHARSETS:
                return data.decode(name)
        except (LookupError, UnicodeError):
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


# striprtf's pattern for font-table entries, r"\\f(\d+).*?\\fcharset(\d+).*?([^;]+);",
# backtracks without end on a damaged table (a fuzzed 13 KB file ran for minutes): the same
# entries, each bounded, in linear time. A well-formed entry is far shorter than 256.
_FONT_ENTRY = re.compile(r"\\f(\d+)[^;\n]{0,256}?\\fcharset(\d+)([^;]{1,256});")


class RtfLoader:
    name = "rtf"
    extensions: tuple[str, ...] = (".rtf",)

    def load(self, path: Path) -> Document:
        import striprtf.striprtf
        from striprtf.striprtf import rtf_to_text

        striprtf.striprtf.FONTTABLE = _FONT_ENTRY

        raw = Path(path).read_bytes()
        if not raw.lstrip().startswith(b"{\\rtf"):
            raise UnreadableDocument("not an RTF file (missing {\\rtf header)")
        try:
            text = rtf_to_text(raw.decode("latin-1"), errors="ignore")
        except Exception as exc:  # noqa: BLE001 - striprtf on a damaged file (a control word cut short)
            raise UnreadableDocument(f"damaged RTF ({type(exc).__name__} in its parser)") from exc
        text = re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n")).strip()
        _require_text(text)
        return Document(str(path), (DocumentPart(text, Locator(start=0, end=len(text))),),
                        mime_type="application/rtf")


_MAIL_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Received")


def _wide_text(sample: bytes) -> bool:
    """Whether ``sample`` (with zero bytes) is UTF-16/32 text rather than binary data."""
    try:
        decode_text(sample[:len(sample) - len(sample) % 4])
    except UnreadableDocument:
        return False
    return True


class EmailLoader:
    """RFC 822 e-mail: headers as the first part, then each text body part."""

    name = "email"
    extensions: tuple[str, ...] = (".eml",)

    def load(self, path: Path) -> Document:
        raw = Path(path).read_bytes()
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
        except Exception:  # noqa: BLE001 - its header parsing fails on some hostile headers: take them raw
            msg = email.message_from_bytes(raw, policy=email.policy.compat32)  # type: ignore[arg-type]
        if not any(h in msg for h in _MAIL_HEADERS):
            raise UnreadableDocument("not an e-mail (no From, To, Subject, Date or MIME header)")
        subject = _header(msg, "subject").strip() or None
        header = "\n".join(f"{h}: {value}" for h in ("From", "To", "Date", "Subject") if (value := _header(msg, h)))
        parts = [DocumentPart(header, Locator(section="headers", start=0, end=len(header)))] if header else []
        plain_seen = False
        bodies: list[tuple[str, str]] = []
        for part in msg.walk():
            try:
                body = _body(part)
            except Exception:  # noqa: BLE001 - the standard library's parser fails on some damaged parts: skip it
                continue
            if body is None:
                continue
            ctype, content = body
            plain_seen = plain_seen or ctype == "text/plain"
            bodies.append((ctype, content.replace("\r\n", "\n").strip()))
        for ctype, content in bodies:
            if ctype == "text/html" and plain_seen:
                continue  # the plain alternative says the same
            if content:
                parts.append(DocumentPart(content, Locator(section="body", start=0, end=len(content))))
        if not any(p.locator.section == "body" for p in parts):
            raise UnreadableDocument("e-mail without a text body")
        return Document(str(path), tuple(parts), title=subject, mime_type="message/rfc822",
                        metadata={"from": _header(msg, "from"), "date": _header(msg, "date")})


def _header(msg: email.message.Message, name: str) -> str:
    """A header's value, decoded; as it stands in the file when the standard library's
    parser fails on it (an address cut short made it raise IndexError)."""
    try:
        return str(msg.get(name, "") or "")
    except Exception:  # noqa: BLE001 - see the docstring
        raw_items = getattr(msg, "raw_items", lambda: msg.items())
        return next((str(v) for k, v in raw_items() if k.lower() == name.lower()), "")


def _body(part: email.message.Message) -> tuple[str, str] | None:
    """(type, text) of a text part of a message; None for other parts and binary data."""
    if part.is_multipart() or part.get_content_disposition() == "attachment":
        return None
    ctype = part.get_content_type()
    if ctype not in ("text/plain", "text/html"):
        return None
    payload = part.get_payload(decode=True)  # bytes (or None) for a part that is not multipart
    if isinstance(payload, bytes) and looks_binary(payload[:4096]) and not _wide_text(payload[:4096]):
        return None  # a "text" part that is binary data
    try:
        content = str(part.get_content())  # type: ignore[attr-defined]  # EmailMessage, by the policy
    except Exception:  # noqa: BLE001 - an unknown charset, a damaged part, a message parsed raw
        content = decode_text(payload if isinstance(payload, bytes) else b"")
    if ctype == "text/html":
        content, _ = html_to_text(content)
    return ctype, content
