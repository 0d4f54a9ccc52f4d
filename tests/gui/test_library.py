"""The Library page over the real FAISS plugin: add a folder, progress, skipped files,
removing, watching, and the plugin being off; then over a library another plugin
provides, with the FAISS plugin off.

The indexing runs in the page's child process with the real MiniLM encoder, the real
FAISS index and SQLite file; nothing is faked. The window is made without loading the
chat model (``load_model=False``): these tests are about the library.
"""

from __future__ import annotations

from pathlib import Path

import memory_library
import pytest
from windows import make_window

from archivist.application import Application
from archivist.gui.window import MainWindow
from archivist.library_process import AskState, Progress
from archivist.types import SyncProgress, SyncReport

TIMEOUT_MS = 180_000


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "lighthouse.txt").write_text("The Cape Wren lighthouse was built in 1871 from local granite.\n"
                                         "Its lamp can be seen 22 nautical miles out to sea.\n")
    (docs / "garden.md").write_text("# Garden\n\nSow the tomato seeds indoors in March.\n")
    (docs / "empty.txt").write_text("")
    (docs / "drawing.xyz").write_bytes(b"\x00\x01 not a document")
    return docs


@pytest.fixture()
def library_app(with_encoder: Path):
    application = Application(with_encoder)
    yield application
    application.close()


def index_folder(win: MainWindow, qtbot, folder: Path) -> SyncReport:
    with qtbot.waitSignal(win.library.report_ready, timeout=TIMEOUT_MS) as blocker:
        win.library.add_folder(folder)
    return blocker.args[0]


def test_adding_a_folder_shows_progress_and_the_finished_count(library_app, qtbot, folder: Path) -> None:
    win = make_window(library_app, qtbot, page="Library")
    page = win.library
    seen: list[tuple[int, int, str]] = []
    page.progressed.connect(lambda done, total, path: seen.append((done, total, path)))
    report = index_folder(win, qtbot, folder)

    assert sorted(Path(p).name for p in report.indexed) == ["garden.md", "lighthouse.txt"]
    # Progress named each file as it was read, then the finished count of the folder.
    assert {Path(p).name for _, _, p in seen if p} == {"drawing.xyz", "empty.txt", "garden.md", "lighthouse.txt"}
    assert seen[-1] == (4, 4, "")
    assert page.progress.isHidden()  # the bar goes once the work is done
    assert "2 indexed" in page.summary.text() and "2 skipped" in page.summary.text()
    table = page.sources_table
    qtbot.waitUntil(lambda: table.rowCount() == 1 and table.item(0, 1).text() == "2", timeout=10_000)
    assert page.source_paths() == [str(folder.resolve())]
    assert table.item(0, 3).text() == "2"  # skipped
    assert int(table.item(0, 2).text()) >= 2  # passages
    # The assistant in this process finds what the child process indexed.
    passages, any_documents = library_app.assistant().retrieve("When was the Cape Wren lighthouse built?", 3)
    assert any_documents and Path(passages[0].path).name == "lighthouse.txt"


def test_a_skipped_file_is_listed_with_its_reason(library_app, qtbot, folder: Path) -> None:
    win = make_window(library_app, qtbot, page="Library")
    index_folder(win, qtbot, folder)
    qtbot.waitUntil(lambda: len(win.library.skipped_rows()) == 2, timeout=10_000)
    reasons = {Path(path).name: reason for path, reason in win.library.skipped_rows()}
    assert reasons["empty.txt"] == "empty file (0 bytes)"
    assert "unsupported file type" in reasons["drawing.xyz"]
    assert win.library.skipped_title.text() == "Skipped files (2)"


def test_removing_a_folder_forgets_it_and_its_passages(library_app, qtbot, folder: Path) -> None:
    win = make_window(library_app, qtbot, page="Library")
    index_folder(win, qtbot, folder)
    qtbot.waitUntil(lambda: bool(win.library.source_paths()), timeout=10_000)
    with qtbot.waitSignal(win.library.changed, timeout=TIMEOUT_MS):
        win.library.remove_folder(str(folder.resolve()))
    qtbot.waitUntil(lambda: win.library.source_paths() == [], timeout=10_000)
    assert win.library.skipped_rows() == []
    assert "Removed" in win.library.summary.text()
    passages, any_documents = library_app.assistant().retrieve("lighthouse granite", 3)
    assert passages == [] and not any_documents


def test_folders_are_watched_while_the_window_is_open_and_no_longer_after(library_app, qtbot, folder: Path) -> None:
    win = make_window(library_app, qtbot, page="Library")
    index_folder(win, qtbot, folder)
    page = win.library
    qtbot.waitUntil(lambda: page.state.watching == (str(folder.resolve()),), timeout=10_000)
    assert page.sources_table.item(0, 4).text() == "watched"
    # The window's own retriever opens the index (and loads its vectors) now...
    passages, _ = library_app.assistant().retrieve("When was the Cape Wren lighthouse built?", 3)
    assert Path(passages[0].path).name == "lighthouse.txt"

    with qtbot.waitSignal(page.changed, timeout=60_000):
        (folder / "tides.txt").write_text("The spring tide at Port Elling reaches 4.2 metres.\n")
    qtbot.waitUntil(lambda: page.sources_table.item(0, 1).text() == "3", timeout=10_000)
    # ...and finds what the child process indexed since, without being closed or reopened.
    passages, _ = library_app.assistant().retrieve("How high is the spring tide at Port Elling?", 3)
    assert Path(passages[0].path).name == "tides.txt"

    process = page.client.process
    win.close()
    assert not process.alive  # closing the window stopped the indexing process and its watcher


def test_the_page_says_plainly_when_the_retrieval_plugin_is_off(home: Path, qtbot) -> None:
    application = Application(home)
    try:
        application.host.records["faiss"].enabled = False
        win = make_window(application, qtbot, page="Library")
        page = win.library
        assert not page.available
        assert "Document search is off" in page.note.text() and "Plugins" in page.note.text()
        assert not hasattr(page, "add_button")
        page.add_folder(home)  # does nothing, and starts no process
        assert page.client is None
        win.close()
    finally:
        application.close()


def test_a_big_file_moves_the_bar_and_says_how_far_it_is_embedded(library_app, qtbot) -> None:
    win = make_window(library_app, qtbot, page="Library")
    page = win.library
    page._on_message(Progress(SyncProgress("/notes", 1, 4, "/notes/book.pdf")))
    assert page.progress.value() == 100 and "book.pdf" in page.progress_label.text()
    page._on_message(Progress(SyncProgress("/notes", 1, 4, "/notes/book.pdf", 150, 300)))
    assert page.progress.value() == 150 and page.progress.maximum() == 400
    assert "book.pdf (50% embedded; already searchable by keyword)" in page.progress_label.text()
    assert page.progress.format() == "1 of 4 files"


@pytest.fixture()
def memory_app(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An application whose library is a third-party plugin's, the FAISS plugin not loaded.

    The plugin is an installed distribution on ``sys.path``, which the page's spawned
    child process inherits, as it inherits ``ARCHIVIST_PLUGINS``."""
    monkeypatch.syspath_prepend(str(memory_library.install(tmp_path / "site")))
    monkeypatch.setenv("ARCHIVIST_PLUGINS", "memory")
    application = Application(home)
    assert "faiss" not in application.host.records and application.library.name == "memory"
    yield application
    application.close()


def test_a_library_another_plugin_provides_drives_the_page(memory_app, qtbot, folder: Path) -> None:
    win = make_window(memory_app, qtbot, page="Library")
    page = win.library
    assert page.available
    seen: list[tuple[int, int, str]] = []
    page.progressed.connect(lambda done, total, path: seen.append((done, total, path)))
    report = index_folder(win, qtbot, folder)

    assert [Path(p).name for p in report.indexed] == ["lighthouse.txt"]  # it reads .txt files only
    assert {Path(p).name for _, _, p in seen if p} == {"drawing.xyz", "empty.txt", "garden.md", "lighthouse.txt"}
    assert seen[-1] == (4, 4, "")
    assert "1 indexed" in page.summary.text() and "3 skipped" in page.summary.text()
    qtbot.waitUntil(lambda: len(page.skipped_rows()) == 3, timeout=10_000)
    reasons = {Path(path).name: reason for path, reason in page.skipped_rows()}
    assert reasons == {"drawing.xyz": "unsupported file type '.xyz'", "empty.txt": "empty file (0 bytes)",
                       "garden.md": "unsupported file type '.md'"}
    table = page.sources_table
    assert page.source_paths() == [str(folder.resolve())]
    assert [table.item(0, c).text() for c in range(1, 5)] == ["1", "1", "3", "not watched"]  # it cannot watch
    # The window learns of the sources through the core, and the assistant finds the passages.
    assert memory_app.library.has_sources()
    passages, any_documents = memory_app.assistant().retrieve("When was the lighthouse built?", 3)
    assert any_documents and "1871" in passages[0].text

    with qtbot.waitSignal(page.changed, timeout=TIMEOUT_MS):
        page.remove_folder(str(folder.resolve()))
    qtbot.waitUntil(lambda: page.source_paths() == [], timeout=10_000)
    assert page.skipped_rows() == [] and "Removed" in page.summary.text()
    assert not memory_app.library.has_sources()
    win.close()


def test_a_folder_gone_from_the_disk_is_shown_missing_and_removed_after_confirming(
        library_app, qtbot, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    win = make_window(library_app, qtbot, page="Library")
    index_folder(win, qtbot, folder)
    qtbot.waitUntil(lambda: bool(win.library.source_paths()), timeout=10_000)
    assert win.library.prune_button.isHidden()
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    passages, _ = library_app.assistant().retrieve("lighthouse granite", 3)
    assert passages == []  # never cited, even before it is removed
    with qtbot.waitSignal(win.library.client.message, timeout=10_000):
        win.library._request(AskState())
    qtbot.waitUntil(lambda: win.library.missing_sources() == [str(folder.resolve())], timeout=10_000)
    status = win.library.sources_table.item(0, 4)
    assert status is not None and status.text() == "missing"
    assert not win.library.prune_button.isHidden()

    asked: list[str] = []

    def answer(choice: QMessageBox.StandardButton):
        def question(_parent, _title, text, *_args):
            asked.append(text)
            return choice
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    win.library.prune_button.click()
    assert win.library.source_paths() == [str(folder.resolve())] and not win.library.busy
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(win.library.changed, timeout=TIMEOUT_MS):
        win.library.prune_button.click()
    qtbot.waitUntil(lambda: win.library.source_paths() == [], timeout=10_000)
    assert len(asked) == 2 and str(folder.resolve()) in asked[0]
    assert win.library.prune_button.isHidden()
