"""PDF text layer, page by page, with pypdfium2 (PDFium; Apache-2.0/BSD-3-Clause); pages
without one are read by OCR (:mod:`ocr`).

Chosen over pypdf, whose default safety limits reject some large financial reports
(LimitReachedError), and over pdfminer/PyMuPDF for speed and licence (PyMuPDF is AGPL).

A page is read by OCR when its text layer holds fewer than :data:`OCR_BELOW_CHARS`
characters (spaces aside) and images cover at least :data:`OCR_IMAGE_SHARE` of it: a
scan, perhaps with a stamped page number. A page of text, or a blank one, costs no OCR.
The text layers are read first, so that the pages to OCR are known and counted for the
progress bar; then each is drawn in grey (:func:`archivist_faiss.ocr.scale_for`) and
read. A page one of whose images declares more than ``MAX_PIXELS`` pixels is not drawn
at all: PDFium decodes an image whole before shrinking it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from archivist import Document, DocumentPart, Locator, UnreadableDocument
from archivist_faiss import ocr
from archivist_faiss.loading import report_pages

OCR_BELOW_CHARS = 100
OCR_IMAGE_SHARE = 0.25
_MAX_IMAGES = 10_000  # image objects looked at on one page (a hostile page may hold millions)


class PdfLoader:
    name = "pdf"
    extensions: tuple[str, ...] = (".pdf",)

    def __init__(self, time_limit_s: float = 120.0, max_pages: int = 20000) -> None:
        self.time_limit_s = time_limit_s  # for the text layers; each page read by OCR has its own
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
            texts: dict[int, str] = {}
            scans: list[int] = []  # pages to read by OCR
            for i in range(n):
                if time.monotonic() > deadline:
                    raise UnreadableDocument(
                        f"PDF text extraction took over {self.time_limit_s:.0f} s (stopped at page {i + 1} of {n})")
                try:
                    page = pdf[i]
                    textpage = page.get_textpage()
                    text = textpage.get_text_range()
                    textpage.close()
                    if _is_scan(page, text):
                        scans.append(i)
                    page.close()
                except pdfium.PdfiumError:
                    continue  # one bad page does not lose the others
                texts[i] = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
            read, refused = self._read_scans(pdf, scans, texts) if scans else (0, [])
            parts = [DocumentPart(text, Locator(page=i + 1, start=0, end=len(text)))
                     for i, text in sorted(texts.items()) if text.strip()]
            if not parts:
                if refused:
                    raise UnreadableDocument(refused[0])
                if scans:
                    raise UnreadableDocument(f"no text found by OCR in {len(scans)} scanned page(s)")
                raise UnreadableDocument(f"no text layer in {n} page(s), and no scanned page to read by OCR")
            return Document(str(path), tuple(parts), title=title, mime_type="application/pdf",
                            metadata={"pages": n, "ocr_pages": read})
        finally:
            pdf.close()

    def _read_scans(self, pdf: Any, scans: list[int], texts: dict[int, str]) -> tuple[int, list[str]]:
        """Read the pages ``scans`` by OCR into ``texts`` (a page where OCR finds nothing
        keeps its text layer). Returns how many were read, and why the others were not.
        Without OCR, a file with text on other pages is read without these; one without
        any raises :class:`~archivist_faiss.ocr.OcrUnavailable`."""
        import pypdfium2 as pdfium

        problem = ocr.missing()
        if problem is not None:
            if any(text.strip() for text in texts.values()):
                return 0, []
            raise ocr.OcrUnavailable(f"no text layer in {len(scans)} scanned page(s), and {problem}")
        read, refused = 0, []
        for done, i in enumerate(scans):
            report_pages(done, len(scans))
            try:
                page = pdf[i]
                try:
                    problem = _too_large(page, i + 1)
                    if problem is not None:
                        refused.append(problem)
                        continue
                    width, height = page.get_size()
                    bitmap = page.render(scale=ocr.scale_for(width, height), grayscale=True)
                    image = bitmap.to_pil()
                finally:
                    page.close()
            except pdfium.PdfiumError:
                continue
            text = ocr.recognize(image)
            del image, bitmap
            read += 1
            if text.strip():
                texts[i] = text
        report_pages(len(scans), len(scans))
        return read, refused


def _images(page: Any) -> list[Any]:
    import pypdfium2.raw as pdfium_c

    found = []
    for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
        found.append(obj)
        if len(found) >= _MAX_IMAGES:
            break
    return found


def _is_scan(page: Any, text: str) -> bool:
    """Little or no text, and pictures over much of the page (see the module's docstring)."""
    import pypdfium2 as pdfium

    if sum(not c.isspace() for c in text) >= OCR_BELOW_CHARS:
        return False
    width, height = page.get_size()
    area = max(width * height, 1.0)
    covered = 0.0
    for image in _images(page):
        bounds = getattr(image, "get_bounds", None) or image.get_pos  # pypdfium2 5, 4
        try:
            left, bottom, right, top = bounds()
        except pdfium.PdfiumError:  # an image without bounds covers nothing
            continue
        w = max(0.0, min(right, width) - max(left, 0.0))
        h = max(0.0, min(top, height) - max(bottom, 0.0))
        covered += w * h
        if covered >= OCR_IMAGE_SHARE * area:
            return True
    return False


def _too_large(page: Any, number: int) -> str | None:
    """Why page ``number`` is not drawn: an image larger than OCR reads, by its header."""
    import pypdfium2 as pdfium

    for image in _images(page):
        size = getattr(image, "get_px_size", None) or image.get_size  # pypdfium2 5, 4
        try:
            width, height = size()
        except pdfium.PdfiumError:  # no size to read: PDFium will judge it
            continue
        problem = ocr.too_many_pixels(int(width), int(height), f"page {number} holds an image of")
        if problem is not None:
            return problem
    return None
