"""Every real third-party file ends with text or a clear reason; bad files never crash."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from archivist_faiss.loading import LoaderRegistry, builtin_loaders
from archivist_faiss.textfiles import decode_text

from .conftest import formats_dir

EXPECTED_SKIPS = {
    "password.pdf": "encrypted",
    "fake-text-all-whitespace.txt": "no text",
}


@pytest.fixture(scope="module")
def registry() -> LoaderRegistry:
    return LoaderRegistry(builtin_loaders())


def test_every_shared_file_loads_or_has_a_reason(registry):
    results = {p.name: registry.load(p) for p in sorted(formats_dir().iterdir())}
    assert len(results) >= 45
    for name, res in results.items():
        if name in EXPECTED_SKIPS:
            assert res.document is None and EXPECTED_SKIPS[name] in res.reason, (name, res.reason)
        else:
            assert res.document is not None, (name, res.reason)
            assert any(p.text.strip() for p in res.document.parts), name


def test_pdf_pages_are_parts_with_page_numbers(registry):
    doc = registry.load(formats_dir() / "DA-619p.pdf").document
    pages = [p.locator.page for p in doc.parts]
    assert pages == sorted(pages) and pages[0] >= 1 and pages[-1] <= 619 and len(pages) > 500


@pytest.mark.parametrize("name", ["eng_spa_mult.txt", "eng_spa_mult.md", "eng_spa_mult.html", "eng_spa_mult.docx",
                                  "eng_spa_mult.odt", "eng_spa_mult.epub", "eng_spa_mult.rtf", "eng_spa_mult.eml",
                                  "eng_spa_mult.pptx"])
def test_same_text_in_nine_formats(registry, name):
    text = registry.load(formats_dir() / name).document.text
    assert "All human beings are born free and equal" in text
    assert "Todos los seres humanos nacen libres" in text


def test_slides_have_slide_locators(registry):
    doc = registry.load(formats_dir() / "eng_spa_mult.pptx").document
    assert [p.locator.page for p in doc.parts] == sorted(p.locator.page for p in doc.parts)
    assert all(p.locator.section.startswith("slide ") for p in doc.parts)


@pytest.mark.parametrize("name", ["fake-text-utf-16-be.txt", "fake-text-utf-16-le.txt", "fake-text-utf-32.txt"])
def test_wide_encodings(registry, name):
    assert "This is a test document" in registry.load(formats_dir() / name).document.text


def test_legacy_code_page_html(registry):
    text = registry.load(formats_dir() / "fake-html-cp1252.html").document.text
    assert "schöne" in text and "très" in text and "€" in text


@pytest.mark.parametrize("data,expected", [
    ("héllo wörld".encode(), "héllo wörld"),
    ("\ufeffhéllo".encode("utf-8"), "héllo"),
    ("héllo wörld".encode("utf-16"), "héllo wörld"),
    ("héllo wörld".encode("utf-32"), "héllo wörld"),
    ("héllo wörld".encode("utf-16-be"), "héllo wörld"),
    ("Der Preis beträgt 15 € für die schöne Tasse, très bien".encode("cp1252"),
     "Der Preis beträgt 15 € für die schöne Tasse, très bien"),
])
def test_decode_text(data, expected):
    assert decode_text(data) == expected


def test_bad_files_are_skipped_with_reasons(tmp_path, registry):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "corrupt.docx").write_bytes(b"PK\x03\x04 this is not really a zip")
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.7\n garbage garbage")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a signature, then nothing
    (tmp_path / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    with zipfile.ZipFile(tmp_path / "noslides.pptx", "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
    with zipfile.ZipFile(tmp_path / "badxml.docx", "w") as zf:
        zf.writestr("word/document.xml", "<w:document><unclosed>")
    expected = {"empty.txt": "empty", "binary.txt": "binary", "corrupt.docx": "corrupt",
                "corrupt.pdf": "corrupt", "photo.png": "corrupt", "clip.mp4": "unsupported", "noslides.pptx": "no slides",
                "badxml.docx": "malformed"}
    for name, word in expected.items():
        res = registry.load(tmp_path / name)
        assert res.document is None and word in res.reason, (name, res.reason)


def test_size_limit(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("hello world\n" * 1000)
    res = LoaderRegistry(builtin_loaders(), max_bytes=1000).load(big)
    assert res.document is None and "too large" in res.reason


def test_time_limit_for_pdfs(tmp_path):
    res = LoaderRegistry(builtin_loaders(time_limit_s=0.0), time_limit_s=0.0).load(formats_dir() / "multi-column.pdf")
    assert res.document is None and ("took over" in res.reason or "limit" in res.reason)


def test_parser_exception_becomes_a_reason(tmp_path):
    class Broken:
        name = "broken"
        extensions = (".xyz",)

        def load(self, path: Path):
            raise ValueError("boom")

    (tmp_path / "a.xyz").write_text("x")
    res = LoaderRegistry([Broken()]).load(tmp_path / "a.xyz")
    assert res.document is None and "ValueError: boom" in res.reason


def test_later_registered_loader_wins(tmp_path):
    from archivist import Document, DocumentPart

    class Shouty:
        name = "shouty"
        extensions = (".txt",)

        def load(self, path: Path):
            return Document(str(path), (DocumentPart(Path(path).read_text().upper()),))

    (tmp_path / "a.txt").write_text("hello")
    reg = LoaderRegistry(builtin_loaders())
    reg.register(Shouty())
    assert reg.load(tmp_path / "a.txt").document.text == "HELLO"
