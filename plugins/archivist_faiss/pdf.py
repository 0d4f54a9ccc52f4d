"""PDF text layer, page by page, with pypdfium2 (PDFium; Apache-2.0/BSD-3-Clause).

Chosen over pypdf, whose default safety limits reject some large financial reports
(LimitReachedError), and over pdfminer/PyMuPDF for speed and licence (PyMuPDF is AGPL).
"""

from __future__ import annotations

import time
from pathlib import Path

from archivist import Document, DocumentPart, Locator, UnreadableDocument


class PdfLoader:
    name = "pdf"
    extensions: tuple[str, ...] = (".pdf",)

    def __init__(self, time_limit_s: float = 120.0, max_pages: int = 20000) -> None:
        self.time_limit_s = time_limit_s
        self.max_pages = max_pages

    def load(self, path: Path) -> Document:
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            msg = str(exc)
            if "password" in msg.lower():
                raise UnreadableDocument("encrypted PDF (a password is needed)") from exc
            raise UnreadableDocument(f"corrupt PDF ({msg})") from exc
        deadline = time.monotonic() + self.time_limit_s
        try:
            n = len(pdf)
            if n == 0:
                raise UnreadableDocument("PDF without pages")
            if n > self.max_pages:
                raise UnreadableDocument(f"PDF of {n} pages is over the limit of {self.max_pages}")
            title = None
            try:
                title = (pdf.get_metadata_dict().get("Title") or "").strip() or None
            except Exception:  # metadata is optional
                title = None
            parts = []
            for i in range(n):
                if time.monotonic() > deadline:
                    raise UnreadableDocument(
                        f"PDF text extraction took over {self.time_limit_s:.0f} s (stopped at page {i + 1} of {n})")
                try:
                    page = pdf[i]
                    textpage = page.get_textpage()
                    text = textpage.get_text_range()
                    textpage.close()
                    page.close()
                except pdfium.PdfiumError:
                    continue  # one bad page does not lose the others
                text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
                if text.strip():
                    parts.append(DocumentPart(text, Locator(page=i + 1, start=0, end=len(text))))
            if not parts:
                raise UnreadableDocument(f"no text layer in {n} page(s) (scanned images? OCR is not done)")
            return Document(str(path), tuple(parts), title=title, mime_type="application/pdf",
                            metadata={"pages": n})
        finally:
            pdf.close()
