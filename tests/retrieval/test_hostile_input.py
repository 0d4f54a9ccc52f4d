"""Hostile and unlucky input (issue #11), each reproduced small by the test itself.

One file never stops its folder (a name that is not UTF-8, a slide numbered past 64 bits,
a UTF-7 page with a lone surrogate); a file costs memory and time within the reader's
ceilings (an ODT asking for 2 GB of spaces, a zip part unpacking past its ceiling, a
200 MB single line, a loader that hangs or hogs memory); a failure that may pass is
retried at the next sync; two syncs of one index take turns; links and unreadable
folders are reported; random bytes are not an e-mail. The limits themselves are in
docs/documents.md ("Limits").
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from archivist import Document, DocumentPart, Locator
from archivist_faiss import officefiles
from archivist_faiss.loading import LoaderRegistry, builtin_loaders
from archivist_faiss.reading import Limits, Reader

from .conftest import formats_dir

ODT = ('<?xml version="1.0"?><office:document-content '
       'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
       'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>{}'
       '</office:text></office:body></office:document-content>')
WORD = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DRAWING = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
AFTER = "The zebra grazes on the savanna after the strange files, in sorted order."


# -- the hostile files -------------------------------------------------------------------


def odt_asking_for_2gb_of_spaces(path: Path) -> Path:
    """The 253-byte ODT of the issue: one <text:s text:c="2000000000"/>."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("content.xml", ODT.format('<text:p>Lighthouse<text:s text:c="2000000000"/>keeper</text:p>'))
    return path


def pptx_with_slide(path: Path, number: str, text: str = "Slide text about volcanoes erupting") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"ppt/slides/slide{number}.xml",
                    f'<p:sld xmlns:p="p" {DRAWING}><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>')
    return path


def docx_of_paragraphs(path: Path, count: int, text: str) -> Path:
    """A .docx whose document.xml is ``count`` paragraphs of ``text`` (streamed in, compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("word/document.xml", "w") as out:
        out.write(f"<w:document {WORD}><w:body>".encode())
        block = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode() * 1000
        for _ in range(count // 1000):
            out.write(block)
        out.write(b"</w:body></w:document>")
    return path


HOSTILE = {
    # name: (bytes, what the report says of it: None = indexed)
    "overflow.pptx": (lambda p: pptx_with_slide(p, "99999999999999999999"), None),
    "utf7.html": (lambda p: p.write_bytes(b'<html><head><meta charset="utf-7"></head><body><p>Birds +2D0- '
                                          b"migrate south over the mountains</p></body></html>"), None),
    "utf7.eml": (lambda p: p.write_bytes(b"From: a@example.org\nSubject: fish\nContent-Type: text/plain; "
                                         b"charset=utf-7\n\nFishes +2D0- swim upstream to spawn\n"), None),
    "random.eml": (lambda p: p.write_bytes(random.Random(11).randbytes(50_000)), "not an e-mail"),
    "spaces.odt": (odt_asking_for_2gb_of_spaces, None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_does_not_stop_the_files_after_it(tmp_path, make_index, name):
    docs = tmp_path / "docs"
    docs.mkdir()
    make, skip_reason = HOSTILE[name]
    make(docs / name)
    (docs / "zz-after.txt").write_text(AFTER)
    report = make_index().index([docs])
    assert str(docs / "zz-after.txt") in report.indexed
    if skip_reason is None:
        assert str(docs / name) in report.indexed, report.skipped
    else:
        [skipped] = report.skipped
        assert skipped.path == str(docs / name) and skip_reason in skipped.reason


def test_a_file_name_that_is_not_utf8_is_indexed_under_an_escaped_name(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    try:
        (docs / os.fsdecode(b"caf\xe9.txt")).write_text("The cafe sells strong coffee and croissants.")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system does not take a name that is not UTF-8")
    (docs / "zz-after.txt").write_text(AFTER)
    ix = make_index()
    report = ix.index([docs])
    assert sorted(report.indexed) == [str(docs / "caf\\xe9.txt"), str(docs / "zz-after.txt")]
    assert Path(ix.search("coffee and croissants", 1)[0].path).name == "caf\\xe9.txt"
    again = ix.sync()
    assert again.unchanged == 2 and not again.indexed and not again.removed


def test_the_slide_number_past_64_bits_is_no_page(tmp_path):
    doc = LoaderRegistry(builtin_loaders()).load(pptx_with_slide(tmp_path / "s.pptx", "99999999999999999999")).document
    assert [(p.locator.page, p.locator.section) for p in doc.parts] == [(None, "slide")]
    doc = LoaderRegistry(builtin_loaders()).load(pptx_with_slide(tmp_path / "t.pptx", "7")).document
    assert [(p.locator.page, p.locator.section) for p in doc.parts] == [(7, "slide 7")]


def test_lone_surrogates_become_replacement_characters(tmp_path):
    registry = LoaderRegistry(builtin_loaders())
    for name, (make, _) in HOSTILE.items():
        if name.startswith("utf7"):
            make(tmp_path / name)
            text = registry.load(tmp_path / name).document.text
            text.encode("utf-8")  # no lone surrogate left
    eml = registry.load(tmp_path / "utf7.eml").document.text
    assert "Fishes \ufffd swim" in eml  # e-mail's UTF-7 is decoded, the lone half replaced
    html = registry.load(tmp_path / "utf7.html").document.text
    assert "Birds +2D0- migrate" in html  # a page may not declare UTF-7 (browsers do not decode it)


def test_random_bytes_are_not_an_email(tmp_path):
    (tmp_path / "r.eml").write_bytes(random.Random(11).randbytes(50_000))
    (tmp_path / "body.eml").write_bytes(b"From: a@example.org\nSubject: noise\nContent-Type: text/plain\n\n"
                                        + random.Random(12).randbytes(5_000))
    registry = LoaderRegistry(builtin_loaders())
    assert "not an e-mail" in registry.load(tmp_path / "r.eml").reason
    assert "without a text body" in registry.load(tmp_path / "body.eml").reason


# -- memory ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_the_odt_space_count_is_clamped(tmp_path):
    started = time.monotonic()
    doc = LoaderRegistry(builtin_loaders()).load(odt_asking_for_2gb_of_spaces(tmp_path / "s.odt")).document
    assert doc.text == "Lighthouse" + " " * officefiles.MAX_SPACES + "keeper"
    assert time.monotonic() - started < 5


def test_a_zip_part_over_its_ceiling_is_refused_unread(tmp_path, monkeypatch):
    """The 1.5 MB .docx that unpacked to 500 MB of XML, under the 512 MB check for the
    whole zip, scaled down: the part's ceiling is set to 1 MiB and the part is 1.6 MiB."""
    monkeypatch.setattr(officefiles, "MAX_PART", 1 << 20)
    path = docx_of_paragraphs(tmp_path / "bomb.docx", 50_000, "x")
    assert path.stat().st_size < 20_000
    reason = LoaderRegistry(builtin_loaders()).load(path).reason
    assert reason == ("its part word/document.xml unpacks to 1.6 MiB, over the 1 MiB one part may hold "
                      "(a zip bomb?)")


@pytest.mark.timeout(120)
def test_a_big_xml_part_is_read_as_it_is_unpacked(tmp_path, faiss_home):
    """20 MB of XML parsed whole took hundreds of MB; streamed, it fits in 48 MB."""
    path = docx_of_paragraphs(tmp_path / "big.docx", 500_000, "lighthouse")
    reader = Reader(LoaderRegistry(builtin_loaders()), faiss_home, limits=Limits(memory_mb=48))
    try:
        result = reader.load(path)
    finally:
        reader.close()
    assert result.document is not None, result.reason
    assert result.document.text.count("lighthouse") == 500_000


def _chunk_a_long_line(tokenizer_json: str, chars: int, memory_mb: int, out: multiprocessing.Queue) -> None:
    from tokenizers import Tokenizer

    from archivist import limit_memory
    from archivist_faiss.chunking import Chunker

    tokenizer = Tokenizer.from_file(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    chunker = Chunker(tokenizer)
    text = ("tides rise and fall twice a day under the pull of the moon " * (chars // 60 + 1))[:chars]
    junk = "a" * chars
    limit_memory(memory_mb)
    words = chunker.chunk(Document("line.txt", (DocumentPart(text, Locator(start=0, end=len(text))),)))
    letters = chunker.chunk(Document("junk.txt", (DocumentPart(junk, Locator(start=0, end=len(junk))),)))
    out.put((len(words), max(c.tokens for c in words), len(letters)))


@pytest.mark.timeout(300)
def test_a_single_huge_line_is_chunked_in_bounded_memory(embedder_path):
    """The 200,000,000-byte single line, scaled to 4 MB: tokenized whole it took ~200x its
    size; in windows and batches it takes the same few MB whatever its length."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_chunk_a_long_line, args=(str(embedder_path / "tokenizer.json"), 4_000_000, 200, out))
    child.start()
    child.join(280)
    assert child.exitcode == 0, f"the chunker went over 200 MB (exit code {child.exitcode})"
    words, most_tokens, letters = out.get(timeout=5)
    assert words > 4_000_000 // 1200 and most_tokens <= 200
    assert letters == 0  # a line of one letter has no word the encoder knows: not text


def test_a_long_text_file_is_read_in_parts(tmp_path):
    from archivist_faiss.textfiles import PART_CHARS

    line = "lighthouse keepers polish the lens " * (3 * PART_CHARS // 35)
    (tmp_path / "one-line.txt").write_text(line)
    doc = LoaderRegistry(builtin_loaders()).load(tmp_path / "one-line.txt").document
    assert len(doc.parts) == 3 and all(len(p.text) <= PART_CHARS for p in doc.parts)
    assert "".join(p.text for p in doc.parts) == line
    assert [p.locator.start for p in doc.parts] == [0, len(doc.parts[0].text), len(doc.parts[0].text)
                                                    + len(doc.parts[1].text)]


def test_the_size_limit_says_the_numbers(tmp_path):
    (tmp_path / "big.txt").write_bytes(b"x" * ((1 << 20) + 1))
    reason = LoaderRegistry(builtin_loaders(), max_bytes=1 << 20).load(tmp_path / "big.txt").reason
    assert reason == "too large: 1,048,577 bytes, over the limit of 1,048,576 (1 MiB)"


def test_the_real_decompression_bomb_scan_is_read_within_the_ceiling(faiss_home):
    """hugemono.pdf: a 35,000 x 35,000 image in 12 KB. Its text layer (none) is read,
    and its page, which would need OCR, is refused by the size its image declares,
    without the image being decoded."""
    bomb = formats_dir().parent / "scans" / "hugemono.pdf"
    if not bomb.exists():
        pytest.skip(f"{bomb} is absent")
    reader = Reader(LoaderRegistry(builtin_loaders()), faiss_home, limits=Limits(memory_mb=64, time_s=30))
    try:
        reason = reader.load(bomb).reason
        assert "35,000 x 35,000 pixels" in reason and "decompression bomb" in reason, reason
    finally:
        reader.close()


# -- the reader's ceilings, with loaders that misbehave (module level: the child adopts them)


class Sleepy:
    """A loader that hangs (a parser in an endless loop)."""

    name = "sleepy"
    extensions = (".slow",)

    def load(self, path: Path) -> Document:
        time.sleep(3600)
        raise AssertionError("unreachable")


class Hog:
    """A loader whose memory grows without end (a decompression bomb)."""

    name = "hog"
    extensions = (".hog",)

    def load(self, path: Path) -> Document:
        held = [bytearray(1 << 20) for _ in range(1024)]  # 1 GB, a megabyte at a time
        return Document(str(path), (DocumentPart(f"held {len(held)} MB"),))


class Flaky:
    """A loader that raises while the file ``<name>.fail`` lies beside the one it reads."""

    name = "flaky"
    extensions = (".flaky",)

    def load(self, path: Path) -> Document:
        if path.with_suffix(".fail").exists():
            raise RuntimeError("the service this loader asks is down")
        return Document(str(path), (DocumentPart(Path(path).read_text()),))


@pytest.mark.timeout(90)
def test_a_hung_loader_is_stopped_at_the_time_limit_and_the_next_file_read(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.slow").write_text("never read")
    (docs / "b.txt").write_text(AFTER)
    ix = make_index(loaders=[Sleepy()], limits=Limits(time_s=2))
    started = time.monotonic()
    report = ix.index([docs])
    assert time.monotonic() - started < 30
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [("a.slow", "took longer than 2 s to read")]
    assert report.indexed == [str(docs / "b.txt")]


@pytest.mark.timeout(90)
def test_a_loader_over_the_memory_ceiling_is_stopped_and_the_next_file_read(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.hog").write_text("x")
    (docs / "b.txt").write_text(AFTER)
    report = make_index(loaders=[Hog()], limits=Limits(memory_mb=64)).index([docs])
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("a.hog", "used more than 64 MB while reading it: a decompression bomb?")]
    assert report.indexed == [str(docs / "b.txt")]


def _grow(megabytes: int) -> None:
    from archivist import limit_memory

    limit_memory(megabytes, watchdog=True)
    held = []
    for _ in range(512):
        held.append(b"\x01" * (1 << 20))  # written to: zeroed pages from calloc are not resident until touched
        time.sleep(0.002)
    time.sleep(20)  # holding 512 MB: on a busy machine the watchdog's thread may run late, not never


def test_the_memory_watchdog_ends_a_process_that_grows_past_its_ceiling():
    """What bounds memory where RLIMIT_AS does not (macOS, Windows), tried on this system."""
    from archivist.child_process import MEMORY_EXIT

    child = multiprocessing.get_context("spawn").Process(target=_grow, args=(64,))
    child.start()
    child.join(60)
    assert child.exitcode == MEMORY_EXIT


# -- failures that may pass are tried again ------------------------------------------------


def test_a_file_that_failed_for_a_passing_reason_is_read_again_at_the_next_sync(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.flaky").write_text("Glaciers carve valleys over thousands of years.")
    (docs / "notes.fail").write_text("")  # not a type any loader reads: skipped for good
    ix = make_index(loaders=[Flaky()])
    first = ix.index([docs])
    reasons = {Path(s.path).name: s.reason for s in first.skipped}
    assert reasons["notes.flaky"] == "could not be parsed (RuntimeError: the service this loader asks is down)"
    assert {f["path"].rsplit("/", 1)[-1]: f["status"] for f in ix.files()} == {"notes.fail": "skipped",
                                                                                "notes.flaky": "failed"}
    (docs / "notes.fail").unlink()  # the service is back; notes.flaky itself did not change
    second = ix.sync()
    assert second.indexed == [str(docs / "notes.flaky")]
    assert second.removed == [str(docs / "notes.fail")]
    assert ix.sync().unchanged == 1


def test_a_file_skipped_for_good_is_not_read_again(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(formats_dir() / "password.pdf", docs / "password.pdf")
    ix = make_index()
    assert "encrypted" in ix.index([docs]).skipped[0].reason
    again = ix.sync()
    assert again.unchanged == 1 and "encrypted" in again.skipped[0].reason


def test_a_file_of_more_passages_than_one_file_may_give_is_skipped_and_the_rest_indexed(
        tmp_path, make_index, monkeypatch):
    """A 200,000,000-byte text of words is about a million passages: gigabytes of vectors
    and hours of embedding. Past the ceiling (here lowered to 20) it is skipped, for good,
    as soon as the 21st passage is cut."""
    from archivist_faiss import chunking

    monkeypatch.setattr(chunking, "MAX_PASSAGES", 20)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "huge.txt").write_text("The lighthouse keeper trims the wick at dusk. " * 2_000)
    (docs / "small.txt").write_text(AFTER)
    ix = make_index()
    report = ix.index([docs])
    assert report.indexed == [str(docs / "small.txt")]
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("huge.txt", "more than 20 passages (about 3,000 words): too big to index usefully; "
                     "split it into smaller files")]
    assert {f["path"].rsplit("/", 1)[-1]: f["status"] for f in ix.files()}["huge.txt"] == "skipped"


def test_a_file_that_cannot_be_saved_is_recorded_failed_and_the_rest_go_on(tmp_path, make_index, monkeypatch):
    """The last line of defence, after the loaders' own: a write that fails for one
    file's sake (a value SQLite refuses) is that file's failure, not the sync's."""
    from sqlalchemy.exc import StatementError

    from archivist_faiss.records import Records

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Bees dance to tell the hive where the flowers are.")
    (docs / "b.txt").write_text(AFTER)
    real = Records.write_file

    def refuse_a(self, source_id, path, *args, **kwargs):
        if path.name == "a.txt" and args[2].document is not None:
            raise StatementError("cannot bind", "INSERT", {}, OverflowError("int too large"))
        return real(self, source_id, path, *args, **kwargs)

    monkeypatch.setattr(Records, "write_file", refuse_a)
    ix = make_index()
    report = ix.index([docs])
    assert report.indexed == [str(docs / "b.txt")]
    assert report.skipped[0].reason == "could not be saved in the index (OverflowError: int too large)"
    monkeypatch.setattr(Records, "write_file", real)
    assert ix.sync().indexed == [str(docs / "a.txt")]


# -- two syncs of one index ---------------------------------------------------------------


def test_two_syncs_of_one_index_take_turns(tmp_path, make_index, caplog):
    """Two indexes on one home (two processes, in effect: each has its own connections
    and reader): the second waits for the first, then finds its files unchanged."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for n, text in enumerate(["Volcanoes erupt lava and ash.", "Rivers carry silt to the sea.",
                              "Owls hunt mice at night."]):
        (docs / f"{n}.txt").write_text(text)
    first, second = make_index(), make_index()
    key = first.add_source(docs)
    results: dict[str, object] = {}

    def other() -> None:
        try:
            results["second"] = second.sync([key])
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            results["second"] = exc

    thread = threading.Thread(target=other)

    def progress(p) -> None:
        if p.done == 1 and not thread.is_alive() and "second" not in results:
            thread.start()
            thread.join(3)  # without the lock, the second sync runs to its end meanwhile

    caplog.set_level(logging.WARNING)
    report = first.sync([key], progress=progress)
    thread.join(60)
    assert len(report.indexed) == 3
    assert not isinstance(results["second"], Exception), results["second"]
    assert results["second"].unchanged == 3 and not results["second"].indexed
    assert "another Archivist process is indexing this library" in caplog.text


@pytest.mark.timeout(300)
def test_two_index_commands_at_once_both_succeed(tmp_path, faiss_home):
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(12):
        (docs / f"{n:02}.txt").write_text(f"Note {n}: the harbour master logged {n} ships arriving at dawn.")
    env = dict(os.environ, ARCHIVIST_HOME=str(faiss_home))
    exe = [shutil.which("archivist")] if shutil.which("archivist") else [sys.executable, "-m", "archivist.cli"]
    runs = [subprocess.Popen(exe + ["index", str(docs), "--json"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [run.communicate(timeout=280) for run in runs]
    for run, (_, err) in zip(runs, outs):
        assert run.returncode == 0 and "Traceback" not in err and "IntegrityError" not in err, err
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(len(r["indexed"]) for r in reports) == [0, 12]  # one indexed, the other waited
    assert sum(r["unchanged"] for r in reports) == 12


# -- what a walk leaves out is said ---------------------------------------------------------


def test_links_and_folders_that_cannot_be_read_are_reported(tmp_path, make_index, monkeypatch):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "locked").mkdir()
    (docs / "locked" / "secret.txt").write_text("never listed")
    (docs / "a.txt").write_text("Penguins huddle together against the Antarctic wind.")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("Outside the source.")
    (docs / "inside-link.txt").symlink_to(docs / "a.txt")
    (docs / "outside-link.txt").symlink_to(outside)
    (docs / "broken-link.txt").symlink_to(tmp_path / "missing.txt")
    (docs / "sub" / "folder-link").symlink_to(tmp_path, target_is_directory=True)
    real_scandir = os.scandir

    def scandir(path="."):  # the folder's permissions, as a user who may not list it sees them
        if Path(os.fsdecode(path)).name == "locked":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    ix = make_index()
    report = ix.index([docs])
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert report.indexed == [str(docs / "a.txt")]
    assert reasons == {
        "broken-link.txt": f"a broken link (to {tmp_path / 'missing.txt'})",
        "folder-link": f"a link to a folder outside what is indexed ({tmp_path}): links are not followed; "
                       "add the folder itself to index it",
        "inside-link.txt": f"a link to {docs / 'a.txt'}: not read twice, the file is indexed under its own name",
        "locked": "cannot read this folder: Permission denied",
        "outside-link.txt": f"a link to a file outside what is indexed ({outside}): links are not followed; "
                            "add the file itself to index it",
    }
    again = ix.sync()  # remembered, as skipped files are: the window's list shows them too
    assert again.unchanged == 6 and {Path(s.path).name for s in again.skipped} == set(reasons)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may read any folder")
def test_a_folder_without_read_permission_is_reported(tmp_path, make_index):
    docs = tmp_path / "docs"
    (docs / "locked").mkdir(parents=True)
    (docs / "a.txt").write_text("Penguins huddle together against the Antarctic wind.")
    (docs / "locked").chmod(0)
    try:
        report = make_index().index([docs])
    finally:
        (docs / "locked").chmod(0o755)
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        ("locked", "cannot read this folder: Permission denied")]


# -- the watcher ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_watcher_goes_on_after_a_hostile_file(tmp_path, make_index, caplog):
    from archivist_faiss.watch import Watcher

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Alpha: the lighthouse stands on the cliff.")
    ix = make_index()
    ix.index([docs])
    synced: list = []
    caplog.set_level(logging.WARNING)
    watcher = Watcher(ix, [str(docs)], debounce_s=0.2, on_sync=synced.append).start()
    try:
        pptx_with_slide(docs / "overflow.pptx", "99999999999999999999")
        try:
            (docs / os.fsdecode(b"caf\xe9.txt")).write_text("The cafe sells strong coffee.")
        except (UnicodeEncodeError, OSError):
            pass
        time.sleep(2)
        (docs / "z.txt").write_text("Zulu: the ferry crosses the strait at noon.")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(str(docs / "z.txt") in r.indexed for r in synced):
            time.sleep(0.2)
    finally:
        watcher.stop()
    indexed = {Path(p).name for r in synced for p in r.indexed}
    assert {"overflow.pptx", "z.txt"} <= indexed
    assert "re-indexing changed files failed" not in caplog.text


def test_a_document_a_loader_returns_is_made_storable(tmp_path, make_index):
    """A third-party loader's page past 64 bits and lone surrogates are cleaned, not fatal."""
    class Wild:
        name = "wild"
        extensions = (".wild",)

        def load(self, path: Path) -> Document:
            return Document(str(path), (DocumentPart("Meteors \udc80 streak across the sky",
                                                     Locator(page=10**30, section="s\ud800")),),
                            title="t\udcff", metadata={"from": "x\udce9", "odd": io.BytesIO()})

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.wild").write_text("x")
    ix = make_index(loaders=[Wild()], isolate=False)
    assert ix.index([docs]).indexed == [str(docs / "a.wild")]
    hit = ix.search("meteors streak across the sky", 1)[0]
    assert hit.page is None and "\ufffd" in hit.text
