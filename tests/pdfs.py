"""PDFs with a real text layer, made by PDFium in the test (tests/ is on sys.path through
its conftest), for the tests of questions about whole files (core, CLI, window)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path


def text_pdf(path: Path, pages: Sequence[Sequence[str]], size: float = 11.0, top: float = 720.0) -> Path:
    """A letter-size PDF whose page i holds the lines ``pages[i]`` as real text, in
    Helvetica of ``size`` points, the first line ``top`` points from the page's foot."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf = pdfium.PdfDocument.new()
    font = raw.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    for lines in pages:
        page = pdf.new_page(612, 792)
        y = top
        for line in lines:
            obj = raw.FPDFPageObj_CreateTextObj(pdf.raw, font, size)
            text = ctypes.create_string_buffer((line + "\0").encode("utf-16-le"))
            raw.FPDFText_SetText(obj, ctypes.cast(text, ctypes.POINTER(raw.FPDF_WCHAR)))
            raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 72, y)
            raw.FPDFPage_InsertObject(page.raw, obj)
            y -= size * 1.5
        raw.FPDFPage_GenerateContent(page.raw)
        page.close()
    pdf.save(str(path))
    pdf.close()
    return path


def report_pages(count: int) -> list[list[str]]:
    """Pages each saying which page they are, in words a test can find again."""
    return [[f"Report page {n} marker P{n}Q.", f"Section {n} covers budget item {n * 7} of the plan.",
             "The committee reviewed the figures and agreed on the next steps."] for n in range(1, count + 1)]
