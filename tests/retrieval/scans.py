"""Scanned pages for the OCR tests, made here: a PDF with a real text layer (PDFium writes
it, in its built-in Helvetica), its pages drawn to images the way a scanner would give
them, and those images wrapped in an image-only PDF or a TIFF. The text layer is the
reference the OCR is measured against, by character error rate (never word for word:
the engine's arithmetic may differ by a character between CPUs)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DPI = 200  # what a scanner set for documents gives


def need_ocr() -> None:
    """Skip when the OCR engine is not installed, except under CI, which installs it."""
    from archivist_faiss import ocr

    problem = ocr.missing()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"under CI the OCR engine is installed by scripts/setup.sh, but: {problem}")
    pytest.skip(problem)


def text_pdf(path: Path, pages: Sequence[Sequence[str]], size: float = 16.0) -> Path:
    """A letter-size PDF whose page i holds the lines ``pages[i]`` as real text, large
    enough to read back from a scan of it (tests/pdfs.py makes it)."""
    from pdfs import text_pdf as make  # tests/ is on sys.path (tests/conftest.py); imported here, not by bench/ocr.py

    return make(path, pages, size=size, top=700.0)


def page_images(pdf_path: Path, dpi: int = DPI) -> list[Any]:
    """Each page of ``pdf_path`` drawn in grey at ``dpi``, as a PIL image (a scan)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return [pdf[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(len(pdf))]
    finally:
        pdf.close()


def image_pdf(path: Path, images: Sequence[Any], dpi: int = DPI) -> Path:
    """An image-only PDF, one page per image (no text layer at all)."""
    first, *rest = [im.convert("L") for im in images]
    first.save(path, "PDF", save_all=True, append_images=rest, resolution=dpi)
    return path


def tiff(path: Path, images: Sequence[Any]) -> Path:
    """A TIFF of one frame per image (as a scanner's multi-page file)."""
    from PIL import TiffImagePlugin

    with TiffImagePlugin.AppendingTiffWriter(str(path), True) as out:
        for im in images:
            im.save(out, format="TIFF")
            out.newFrame()
    return path


def cer(reference: str, found: str) -> float:
    """Character error rate: edits (Levenshtein) from ``reference`` to ``found`` over the
    reference's length, both with runs of white space made one space."""
    ref, hyp = " ".join(reference.split()), " ".join(found.split())
    if not ref:
        return float(bool(hyp))
    b = np.array([ord(c) for c in hyp], dtype=np.int64)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, ch in enumerate(ref, 1):
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[1:] + 1, row[:-1] + (b != ord(ch)))  # deletion, substitution
        row = np.minimum.accumulate(new - steps) + steps  # insertion: new[j] <= new[j-1] + 1
    return float(row[-1]) / len(ref)
