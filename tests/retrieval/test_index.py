"""The index end to end: real encoder, real FAISS, real SQLite.

What every library must do is ``archivist.testing.LibraryContract`` (run on the FAISS
library in ``test_library_contract.py``); these are the index's own promises: search,
incremental sync, crashes, other processes' writes, big files, approximate search.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from archivist import ArchivistError, SyncProgress
from archivist_faiss import catalog
from archivist_faiss.index import open_index

from .conftest import formats_dir

SMALL = ["eng_spa_mult.txt", "eng_spa_mult.docx", "fake-memo.pdf", "fake-email.eml",
         "fake-text.txt", "fake-html-cp1252.html", "fake-power-point.pptx", "fake.odt", "password.pdf",
         "fake-text-all-whitespace.txt", "layout-parser-paper-with-table.pdf", "codeblock.md"]


def copy_some(dest: Path, names=SMALL) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        src = formats_dir() / n
        if src.exists():
            shutil.copy(src, dest / n)
    return dest


class Boom(Exception):
    pass


def test_index_and_search_finds_the_right_file(tmp_path, make_index):
    docs = copy_some(tmp_path / "docs")
    ix = make_index()
    report = ix.index([docs])
    skipped = {s.path: s.reason for s in report.skipped}
    assert "encrypted" in skipped[str(docs / "password.pdf")]
    assert "no text" in skipped[str(docs / "fake-text-all-whitespace.txt")]
    assert len(report.indexed) + len(report.skipped) == len(list(docs.iterdir()))
    hits = ix.search("Todos los seres humanos nacen libres e iguales en dignidad", 3)
    assert Path(hits[0].path).name.startswith("eng_spa_mult")
    hits = ix.search("how many bottles were there", 3)
    assert Path(hits[0].path).name == "fake-memo.pdf" and hits[0].page == 1
    # each hit carries what a citation needs
    h = hits[0]
    assert h.text and h.end > h.start and h.score > 0 and h.chunk_id > 0
    passage = h.to_passage()
    assert passage.locator.page == 1 and passage.path == h.path
    for mode in ("dense", "keyword"):
        assert ix.search("bottles", 3, mode=mode)


def test_file_names_titles_and_dates_are_searchable(tmp_path, make_index):
    docs = copy_some(tmp_path / "docs", ["fake-email.eml", "fake-text.txt"])
    os.utime(docs / "fake-text.txt", (time.mktime((2021, 3, 14, 12, 0, 0, 0, 0, -1)),) * 2)
    ix = make_index()
    ix.index([docs])
    assert Path(ix.search("fake-email", 1, mode="keyword")[0].path).name == "fake-email.eml"
    assert Path(ix.search("Test Email", 1, mode="keyword")[0].path).name == "fake-email.eml"  # its subject
    assert Path(ix.search("March 2021", 1, mode="keyword")[0].path).name == "fake-text.txt"


def test_incremental_sync(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The lighthouse keeper polished the great lens every evening.")
    (docs / "b.txt").write_text("Volcanic soil makes the vineyards on the island unusually fertile.")
    (docs / "c.txt").write_text("The committee postponed the vote on the railway budget.")
    ix = make_index()
    r = ix.index([docs])
    assert len(r.indexed) == 3
    r = ix.sync()
    assert r.indexed == [] and r.unchanged == 3
    (docs / "a.txt").write_text("The astronomer catalogued comets from the mountain observatory.")
    (docs / "b.txt").unlink()
    os.utime(docs / "c.txt", (time.time() + 5,) * 2)  # touched, not changed: hash says unchanged
    r = ix.sync()
    assert r.indexed == [str(docs / "a.txt")] and r.removed == [str(docs / "b.txt")] and r.unchanged == 1
    paths = {Path(h.path).name for h in ix.search("lighthouse lens vineyards volcanic", 10)}
    assert "b.txt" not in paths
    assert Path(ix.search("comets observatory", 1)[0].path).name == "a.txt"
    assert all("lighthouse" not in h.text for h in ix.search("lighthouse keeper", 10))
    # a fresh process sees the same state (FAISS file + SQLite)
    ix2 = make_index()
    assert Path(ix2.search("comets observatory", 1)[0].path).name == "a.txt"
    ix2.ensure_vectors()
    assert ix2.vectors.count == ix2._chunk_count()


def test_interrupted_run_resumes_and_hides_half_indexed_files(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    names = ["1-alpha.txt", "2-bravo.txt", "3-charlie.txt"]
    texts = ["Penguins huddle together through the antarctic winter.",
             "The blacksmith forged a horseshoe from glowing iron.",
             "Quantum computers use qubits that can be in superposition."]
    for n, t in zip(names, texts):
        (docs / n).write_text(t)

    def fault(point, path):
        if point == "in_transaction" and path.name == "2-bravo.txt":
            raise Boom("killed midway")

    ix = make_index()
    with pytest.raises(Boom):
        ix.index([docs], fault=fault)
    # what was committed is searchable; the file being written is not there at all
    ix2 = make_index()
    files = {Path(f["path"]).name: f["status"] for f in ix2.files()}
    assert files == {"1-alpha.txt": "indexed"}
    assert all("horseshoe" not in h.text for h in ix2.search("blacksmith horseshoe iron", 5))
    assert all("horseshoe" not in h.text for h in ix2.search("blacksmith horseshoe iron", 5, mode="keyword"))
    # the next run resumes: the first file is unchanged, the rest get indexed
    r = ix2.sync()
    assert r.unchanged == 1 and sorted(Path(p).name for p in r.indexed) == ["2-bravo.txt", "3-charlie.txt"]
    assert Path(ix2.search("blacksmith horseshoe", 1)[0].path).name == "2-bravo.txt"


def test_fault_in_the_embedder_leaves_the_file_searchable_by_keyword_and_resumes(tmp_path, make_index, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Tides are caused by the gravitational pull of the moon.")
    (docs / "b.txt").write_text("Sourdough bread rises thanks to wild yeast and bacteria.")

    class FailingEmbedder:
        """The real encoder, failing on its second call (a crash mid-run)."""

        def __init__(self):
            self.calls = 0
            self.tokenizer = embedder.tokenizer

        def embed(self, texts):
            self.calls += 1
            if self.calls == 2:
                raise Boom("encoder died")
            return embedder.embed(texts)

    ix = make_index(embedder=FailingEmbedder())
    with pytest.raises(Boom):
        ix.index([docs])
    ix2 = make_index()
    # b.txt's passages were committed before its vectors: its words are searchable, its meaning not yet
    assert {Path(f["path"]).name: f["status"] for f in ix2.files()} == {"a.txt": "indexed", "b.txt": "embedding"}
    assert Path(ix2.search("sourdough yeast", 1, mode="keyword")[0].path).name == "b.txt"
    assert all(Path(h.path).name != "b.txt" for h in ix2.search("sourdough yeast", 5, mode="dense"))
    report = ix2.sync()
    assert [Path(p).name for p in report.indexed] == ["b.txt"] and report.unchanged == 1
    assert Path(ix2.search("sourdough yeast", 1, mode="dense")[0].path).name == "b.txt"
    assert ix2.vectors.count == ix2.chunk_count() == 2


def test_stale_or_missing_faiss_file_is_rebuilt(tmp_path, make_index):
    docs = copy_some(tmp_path / "docs", ["fake-memo.pdf", "fake-text.txt"])
    ix = make_index()
    ix.index([docs])
    ix.close()
    faiss_file = ix.dir / "vectors.faiss"
    assert faiss_file.exists() and not list(ix.dir.glob("*.tmp"))
    faiss_file.unlink()
    ix2 = make_index()
    assert Path(ix2.search("bottles", 1, mode="dense")[0].path).name == "fake-memo.pdf"
    assert faiss_file.exists()
    # a stamp from another generation forces a rebuild too
    (ix.dir / "vectors.json").write_text('{"generation": -1, "dim": 384}')
    ix3 = make_index()
    assert Path(ix3.search("bottles", 1, mode="dense")[0].path).name == "fake-memo.pdf"


def test_writes_by_another_process_reach_an_open_index(tmp_path, make_index):
    """The GUI's window searches while its indexing child (or a CLI run) writes: nothing is
    shared in memory, only the SQLite file and the FAISS cache, as between two objects."""
    a_docs = copy_some(tmp_path / "a", ["fake-memo.pdf"])
    b_docs = copy_some(tmp_path / "b", ["eng_spa_mult.txt"])
    searcher, writer = make_index(), make_index()
    searcher.index([a_docs])
    assert Path(searcher.search("bottles", 1, mode="dense")[0].path).name == "fake-memo.pdf"
    writer.index([b_docs])  # its in-memory vectors started from the searcher's file
    hit = searcher.search("Todos los seres humanos nacen libres e iguales", 1, mode="dense")[0]
    assert Path(hit.path).name == "eng_spa_mult.txt"
    writer.remove_source(a_docs)
    assert all(Path(h.path).name != "fake-memo.pdf" for h in searcher.search("bottles", 5, mode="dense"))
    # the searcher writes after the writer did: its save must not stamp a stale cache as current
    (a_docs / "fake-memo.pdf").unlink()
    shutil.copy(formats_dir() / "fake-text.txt", a_docs / "fake-text.txt")
    searcher.index([a_docs])
    fresh = make_index()
    names = {Path(h.path).name for h in fresh.search("Todos los seres humanos", 10, mode="dense")}
    assert {"eng_spa_mult.txt", "fake-text.txt"} <= names and "fake-memo.pdf" not in names


def big_text(path: Path, paragraphs: int = 400) -> Path:
    path.write_text("\n\n".join(
        f"Ledger entry {i}: the harbour office recorded {i * 7} crates of tea, {i % 13} barrels of "
        f"oil and a note from clerk number {i % 29} about the tide on day {i % 31} of the season."
        for i in range(paragraphs)), encoding="utf-8")
    return path


def test_a_big_file_reports_how_far_it_is_embedded(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    big = big_text(docs / "ledger.txt")
    seen: list[SyncProgress] = []
    ix = make_index()
    report = ix.index([docs], progress=seen.append)
    parts = [p for p in seen if p.part_total]
    assert report.passages > 64 and len(parts) >= 3
    assert {p.path for p in parts} == {str(big)} and {p.root for p in seen} == {str(docs)}
    done = [p.part_done for p in parts]
    assert done == sorted(set(done))  # rising, no repeats
    assert (parts[-1].part_done, parts[-1].part_total) == (report.passages, report.passages)
    assert seen[-1] == SyncProgress(str(docs), 1, 1)


def test_stopping_inside_a_big_file_keeps_its_words_and_the_next_run_finishes_it(tmp_path, make_index):
    docs = tmp_path / "docs"
    docs.mkdir()
    big_text(docs / "ledger.txt")
    (docs / "note.txt").write_text("The lamp room is painted white every spring.", encoding="utf-8")
    cancel = threading.Event()

    def stop(p: SyncProgress) -> None:
        if Path(p.path).name == "ledger.txt" and p.part_done >= 32:
            cancel.set()  # Stop pressed while the big file is embedded

    ix = make_index()
    report = ix.index([docs], progress=stop, cancel=cancel)
    assert report.cancelled and report.indexed == []
    # its passages were committed before embedding began: searchable by keyword, "embedding"
    assert {Path(f["path"]).name: f["status"] for f in ix.files()} == {"ledger.txt": "embedding"}
    assert Path(ix.search("crates of tea", 1, mode="keyword")[0].path).name == "ledger.txt"
    passages = ix.chunk_count()
    report = make_index().sync()
    assert "ledger.txt" in {Path(p).name for p in report.indexed}
    assert make_index().chunk_count() == passages + 1  # the note; the ledger's passages not doubled
    assert Path(make_index().search("crates of tea harbour office", 1)[0].path).name == "ledger.txt"


def test_approximate_index_above_threshold(tmp_path, make_index):
    docs = copy_some(tmp_path / "docs", ["UDHR_first_article_all.txt", "fake-memo.pdf"])
    ix = make_index(approx_threshold=100)
    ix.index([docs])
    n = ix._chunk_count()
    assert n >= 100
    assert ix.vectors.kind == "ivf"
    exact = make_index(approx_threshold=10**9)
    exact.ensure_vectors()
    assert Path(ix.search("bottles", 1, mode="dense")[0].path).name == "fake-memo.pdf"
    # reopened: the IVF file is loaded as is
    ix2 = make_index(approx_threshold=100)
    ix2.ensure_vectors()
    assert ix2.vectors.kind == "ivf" and ix2.vectors.count == n
    # below half the threshold it goes back to exact search
    ix3 = make_index(approx_threshold=100)
    ix3.remove_source(docs)
    assert ix3.vectors.kind == "flat" and ix3.vectors.count == 0


def test_sources_list_and_remove(tmp_path, make_index):
    a = copy_some(tmp_path / "a", ["fake-memo.pdf"])
    b = copy_some(tmp_path / "b", ["fake-text.txt"])
    ix = make_index()
    ix.index([a, b])
    database = catalog.database_path(ix.home)
    rows = {Path(r.path).name: r for r in catalog.read(database, catalog.sources, [])}
    assert rows["a"].files == 1 and rows["b"].passages >= 1
    assert ix.remove_source(a) == 1
    assert [Path(r.path).name for r in catalog.read(database, catalog.sources, [])] == ["b"]
    assert all(Path(h.path).parent.name == "b" for h in ix.search("bottles", 5))
    with pytest.raises(ArchivistError, match="not a source"):
        ix.remove_source(a)


def test_watcher_picks_up_changes(tmp_path, make_index):
    from archivist_faiss.watch import Watcher

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "old.txt").write_text("Glaciers carve valleys over thousands of years.")
    ix = make_index()
    ix.index([docs])
    w = Watcher(ix, [docs], debounce_s=0.3).start()
    try:
        (docs / "new.txt").write_text("Honeybees communicate through a waggle dance.")
        (docs / "old.txt").unlink()
        deadline = time.time() + 30
        while time.time() < deadline:
            names = {Path(f["path"]).name for f in ix.files()}
            if names == {"new.txt"}:
                break
            time.sleep(0.2)
        assert names == {"new.txt"}
    finally:
        w.stop()
    assert Path(ix.search("waggle dance bees", 1)[0].path).name == "new.txt"


def test_retriever_through_the_plugin_hook(faiss_home, tmp_path, embedder):
    import archivist_faiss
    from archivist import PluginContext, Retriever

    docs = copy_some(tmp_path / "docs", ["fake-memo.pdf"])
    ix = open_index(faiss_home, embedder=embedder)
    ix.index([docs])
    ix.close()
    got = []
    archivist_faiss.register_retrievers(got.append, PluginContext(home=faiss_home))
    retriever = got[0]
    assert isinstance(retriever, Retriever)
    passages = retriever.search("bottles", 2)
    assert passages[0].path.endswith("fake-memo.pdf") and passages[0].locator.page == 1
    retriever.close()
    loaders = []
    archivist_faiss.register_loaders(loaders.append, PluginContext(home=faiss_home))
    assert {".pdf", ".docx", ".txt", ".eml"} <= {e for loader in loaders for e in loader.extensions}
