"""Scanned pages read by OCR: the real engine on pages made here (tests/retrieval/scans.py),
the index end to end on a scanned PDF, and the limits that keep a decompression bomb out.

OCR output may differ by a character between CPUs, so text is compared by character
error rate against the text the page was drawn from, with a tolerance, never word for
word; a search is asserted on the page it finds.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest

from archivist import Document, DocumentPart, SyncProgress
from archivist_faiss import ocr
from archivist_faiss.loading import LoaderRegistry, builtin_loaders, report_pages
from archivist_faiss.reading import Limits, Reader

from .conftest import FORMATS
from .scans import cer, image_pdf, need_ocr, page_images, text_pdf, tiff

SCANS = FORMATS.parent / "scans"

LEDGER = ["The archive of the Tarrant Valley Railway holds its ledgers",
          "from 1887 to 1931, bound in forty volumes of green cloth."]
LIGHTHOUSE = ["The lighthouse keeper counted seventeen ships passing",
              "the northern reef before the storm. Her logbook recorded",
              "the wind at forty knots and the barometer still falling."]
HARBOUR = ["The harbour master signed the register on the ninth of",
           "October, and the schooner Marigold left with the tide."]


@pytest.fixture(scope="module")
def registry() -> LoaderRegistry:
    return LoaderRegistry(builtin_loaders())


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> dict[str, Path]:
    """The pages drawn from a text PDF, and the same pages as scans: a PNG, a two-frame
    TIFF, and a PDF whose page 1 keeps its text layer while pages 2 and 3 are images."""
    folder = tmp_path_factory.mktemp("scans")
    text = text_pdf(folder / "text.pdf", [LEDGER, LIGHTHOUSE, HARBOUR])
    _, lighthouse, harbour = page_images(text)
    lighthouse.save(folder / "lighthouse.png")
    tiff(folder / "two.tif", [lighthouse, harbour])
    images = image_pdf(folder / "images.pdf", [lighthouse, harbour])
    import pypdfium2 as pdfium

    mixed = pdfium.PdfDocument(str(text))
    mixed.del_page(2)
    mixed.del_page(1)  # page 1 (LEDGER) with its text layer...
    mixed.import_pages(pdfium.PdfDocument(str(images)))  # ...then two scanned pages
    mixed.save(str(folder / "mixed.pdf"))
    return {"png": folder / "lighthouse.png", "tif": folder / "two.tif", "pdf": folder / "mixed.pdf"}


def test_a_picture_of_a_page_is_read_within_a_character_error_rate(registry, scanned):
    need_ocr()
    result = registry.load(scanned["png"])
    assert result.document is not None, result.reason
    [part] = result.document.parts
    assert part.locator.page == 1 and part.locator.end == len(part.text)
    assert cer("\n".join(LIGHTHOUSE), part.text) < 0.05, part.text
    assert result.document.metadata == {"pages": 1, "ocr_pages": 1}


def test_each_frame_of_a_tiff_is_a_page(registry, scanned):
    need_ocr()
    seen: list[tuple[int, int]] = []
    result = registry.load(scanned["tif"], progress=lambda done, total: seen.append((done, total)))
    assert result.document is not None, result.reason
    assert [p.locator.page for p in result.document.parts] == [1, 2]
    assert cer("\n".join(LIGHTHOUSE), result.document.parts[0].text) < 0.05
    assert cer("\n".join(HARBOUR), result.document.parts[1].text) < 0.05
    assert seen == [(0, 2), (1, 2), (2, 2)]


@pytest.mark.timeout(300)
def test_a_scanned_pdf_is_indexed_with_its_page_numbers_and_found(tmp_path, make_index, scanned):
    """Only the two pages without a text layer are read by OCR (the progress says so,
    page by page), and a search finds each scanned page under its own number."""
    need_ocr()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "logbook.pdf").write_bytes(scanned["pdf"].read_bytes())
    seen: list[SyncProgress] = []
    ix = make_index()
    report = ix.index([docs], progress=seen.append)
    assert report.indexed == [str(docs / "logbook.pdf")], report.skipped
    assert report.pages == 3
    assert [(p.part_done, p.part_total) for p in seen if p.stage == "ocr"] == [(0, 2), (1, 2), (2, 2)]
    for query, page in (("lighthouse keeper counted ships passing the reef", 2),
                        ("harbour master signed the register", 3),
                        ("ledgers of the Tarrant Valley Railway", 1)):
        hit = ix.search(query, 1)[0]
        assert (Path(hit.path).name, hit.page) == ("logbook.pdf", page), (query, hit)


def test_without_the_engine_a_scan_is_skipped_until_it_is_installed(tmp_path, registry, monkeypatch):
    from PIL import Image

    Image.new("L", (200, 100), 255).save(tmp_path / "blank.png")
    monkeypatch.setattr(ocr, "missing", lambda: "OCR is not installed (run scripts/setup.sh)")
    result = registry.load(tmp_path / "blank.png")
    assert result.document is None and "OCR is not installed" in result.reason
    assert result.transient  # read again at the next sync, when it may be installed


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` one-bit pixels and holds one row of them:
    a few dozen bytes that would decode to gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = zlib.compress(b"\0" * (1 + (width + 7) // 8))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", row) + chunk(b"IEND", b""))
    return path


def _pdf_of_one_huge_image(path: Path, width: int, height: int) -> Path:
    """A one-page PDF whose image declares ``width`` x ``height`` pixels (its data, a
    flate stream of zeros, is a few bytes: a decompression bomb like hugemono.pdf)."""
    data = zlib.compress(b"\0" * 64)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im 4 0 R >> >>"
               b" /Contents 5 0 R >>",
               b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray"
               b" /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n" % (width, height, len(data))
               + data + b"\nendstream",
               b"<< /Length 31 >>\nstream\nq 612 0 0 792 0 0 cm /Im Do Q\nendstream"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


@pytest.mark.timeout(120)
def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path, faiss_home):
    """Read in the reader with 64 MB to spare: decoding any of these would end it."""
    _png_header_only(tmp_path / "huge.png", 60_000, 60_000)  # over Pillow's own ceiling
    _png_header_only(tmp_path / "big.png", 8_000, 8_000)  # 64 million: over ours only
    _pdf_of_one_huge_image(tmp_path / "huge.pdf", 40_000, 40_000)
    reader = Reader(LoaderRegistry(builtin_loaders()), faiss_home, limits=Limits(memory_mb=64, time_s=30))
    try:
        for name, size in (("huge.png", "more than 178,956,970 pixels"), ("big.png", "8,000 x 8,000"),
                           ("huge.pdf", "40,000 x 40,000")):
            t0 = time.monotonic()
            result = reader.load(tmp_path / name)
            assert result.document is None and not result.transient, (name, result.reason)
            assert "decompression bomb" in result.reason and size in result.reason, (name, result.reason)
            assert time.monotonic() - t0 < 10, name
    finally:
        reader.close()


@pytest.mark.timeout(120)
def test_a_page_of_thirty_inches_is_refused_by_the_size_of_its_image(faiss_home):
    """enormous.pdf: a 30-inch page holding an image of 9,000 x 9,000, 81 million pixels,
    over the ceiling, so not decoded (hugemono.pdf: test_hostile_input.py)."""
    path = SCANS / "enormous.pdf"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared test data is not checked out beside the repo)")
    reader = Reader(LoaderRegistry(builtin_loaders()), faiss_home, limits=Limits(memory_mb=64, time_s=30))
    try:
        reason = reader.load(path).reason
    finally:
        reader.close()
    assert reason is not None and "page 1 holds an image of 9,000 x 9,000 pixels" in reason, reason


@pytest.mark.timeout(300)
def test_the_shared_scan_is_read_within_a_character_error_rate(registry):
    """linn.png, a two-column product sheet; its reference linn.txt was itself made by OCR
    and has a few errors, hence the wider tolerance (2.2% measured: bench/ocr.py)."""
    path = SCANS / "linn.png"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared test data is not checked out beside the repo)")
    need_ocr()
    result = registry.load(path)
    assert result.document is not None, result.reason
    assert cer((SCANS / "linn.txt").read_text("utf-8"), result.document.text) < 0.08


# -- the time limit a page read by OCR gets (module level: the reader's child adopts them)


class Pages:
    """A loader of three slow pages, each reported as OCR reports it; a file named
    ``stuck.*`` hangs on its second page."""

    name = "pages"
    extensions = (".pages",)

    def load(self, path: Path) -> Document:
        for page in range(3):
            report_pages(page, 3)
            time.sleep(3600 if path.stem == "stuck" and page == 1 else 0.8)
        report_pages(3, 3)
        return Document(str(path), (DocumentPart("three slow pages"),), metadata={"ocr_pages": 3})


@pytest.mark.timeout(120)
def test_each_page_read_by_ocr_has_its_own_time_limit(tmp_path, faiss_home):
    """2.4 s of pages pass a 1 s file limit, since each page took less than its 1.5 s;
    a page that hangs is stopped at 1.5 s, and the reason says which page."""
    assert Limits.from_settings({"retrieval": {"ocr_page_seconds": 90}}).page_s == 90
    assert Limits.from_settings({}).page_s == 60
    (tmp_path / "slow.pages").write_text("x")
    (tmp_path / "stuck.pages").write_text("x")
    registry = LoaderRegistry(builtin_loaders())
    registry.register(Pages())
    reader = Reader(registry, faiss_home, limits=Limits(time_s=1, page_s=1.5))
    try:
        seen: list[tuple[int, int]] = []
        result = reader.load(tmp_path / "slow.pages", progress=lambda done, total: seen.append((done, total)))
        assert result.document is not None, result.reason
        assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
        t0 = time.monotonic()
        result = reader.load(tmp_path / "stuck.pages")
        assert result.reason == ("took longer than 1.5 s to read one scanned page by OCR "
                                 "(page 2 of the 3 it needed)") and result.transient
        assert time.monotonic() - t0 < 10
    finally:
        reader.close()
