"""The Library page: the folders Archivist answers from, indexing progress, skipped files.

A thin view over the core's library service (:mod:`archivist.library`), whichever
plugin provides the library, driven exactly as ``archivist index`` / ``archivist
sources`` drive it, in a child process (:mod:`archivist.library_process`) so that
parsing and embedding never stall the window. Everything shown comes from the library
(its sources, its skipped files with their reasons) or from a sync's report.

When no plugin provides a library (none installed, or it is switched off), the page
says why, in the service's words, and offers nothing else. When the user may only read
the library (a shared collection they are not a writer of: ``archivist.Writable``), it
shows what the library holds, offers no adding, indexing or removing, and says why in the
library's own line.

"Ask about a file…" (and the table's context menu) hands a file to the chat, which pins
it to a new conversation so its questions are answered from the whole file; asking is
reading, so it is offered on a read-only library too.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.tables import style_read_only_table
from archivist.gui.workers import emit
from archivist.library import summary_line
from archivist.library_process import (
    Cancelled,
    Failed,
    Fatal,
    IndexPaths,
    LibraryProcess,
    LibraryState,
    Note,
    Progress,
    Removed,
    RemoveSource,
    Report,
    Request,
    SyncSources,
    Watched,
)
from archivist.types import SyncProgress, SyncReport


class LibraryClient(QObject):
    """The library process's replies as a Qt signal (delivered on the UI thread)."""

    message = Signal(object)  # the reply the child sent (archivist.library_process)
    ended = Signal()

    def __init__(self, home: Path, safe_mode: bool) -> None:
        super().__init__()
        self.process = LibraryProcess(home, safe_mode=safe_mode)
        self._reader = threading.Thread(target=self._read, name="archivist-library-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            message = self.process.receive()
            if message is None:
                break
            emit(self.message, message)
            if isinstance(message, Fatal):
                break
        emit(self.ended)

    def close(self) -> None:
        self.process.close()
        self._reader.join(5)


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min"


class LibraryPage(QWidget):
    """Folders, their indexing, and what was skipped; ``changed`` after the index moved."""

    changed = Signal()  # the index has new, changed or removed passages
    busy_changed = Signal(bool)
    report_ready = Signal(object)  # the finished sync's report (archivist.SyncReport)
    failed = Signal(str)  # a request failed, or the index could not be opened
    progressed = Signal(int, int, str)  # files done, files in the folder, the file now read
    ask_about_file = Signal(str)  # a file to answer from whole: the window pins it to a new conversation

    def __init__(self, app: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.client: LibraryClient | None = None
        self.state = LibraryState((), (), ())
        self.last_report: SyncReport | None = None
        self.busy = False
        self._started_at = 0.0
        self._root_started: dict[str, float] = {}
        self._pruning: list[str] = []  # missing sources still to remove, one request at a time
        self.read_only = ""  # why the user may not change the library ("" when they may)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Library")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        self.problem = app.library.problem()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("hint")
        layout.addWidget(self.note)
        if self.problem:
            self.note.setText(self.problem)
            self.note.setObjectName("banner")
            layout.addStretch(1)
            return
        self.note.setText(
            "Answers come from the folders listed here. Archivist reads them on this computer "
            "and keeps watching them while it runs: files you add, change or delete are "
            "indexed again by themselves."
        )

        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add folder…")
        self.add_button.clicked.connect(self._choose_folder)
        self.remove_button = QPushButton("Remove folder")
        self.remove_button.clicked.connect(self._remove_selected)
        self.sync_button = QPushButton("Check for changes")
        self.sync_button.setToolTip("Index new and changed files in every folder, drop deleted ones.")
        self.sync_button.clicked.connect(self.sync)
        self.prune_button = QPushButton("Remove missing…")
        self.prune_button.setToolTip("Forget the folders that are gone from the disk, with what was indexed from them.")
        self.prune_button.clicked.connect(self._confirm_prune)
        self.cancel_button = QPushButton("Stop indexing")
        self.cancel_button.clicked.connect(self.cancel)
        self.ask_button = QPushButton("Ask about a file…")
        self.ask_button.setToolTip("Pin a file to a new conversation and ask about all of it "
                                   "(\u201csummarise this report\u201d)")
        self.ask_button.clicked.connect(self._ask_about_selected)
        for button in (self.add_button, self.remove_button, self.prune_button, self.sync_button,
                       self.cancel_button, self.ask_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.read_only_note = QLabel("")
        self.read_only_note.setObjectName("hint")
        self.read_only_note.setWordWrap(True)
        self.read_only_note.setVisible(False)
        layout.addWidget(self.read_only_note)

        self.empty = QLabel("No folders yet: “Add folder…” picks one. Nothing leaves this computer.")
        layout.addWidget(self.empty)
        self.sources_table = QTableWidget(0, 5)
        self.sources_table.setHorizontalHeaderLabels(("Folder", "Files", "Passages", "Skipped", "Changes"))
        style_read_only_table(self.sources_table, stretch_column=0)
        self.sources_table.itemSelectionChanged.connect(self._update_buttons)
        self.sources_table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.sources_table.customContextMenuRequested.connect(self._source_menu)
        layout.addWidget(self.sources_table, 1)

        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("hint")
        layout.addWidget(self.summary)
        self.error = QLabel("")
        self.error.setObjectName("banner")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        layout.addWidget(self.error)

        self.skipped_title = QLabel("Skipped files")
        self.skipped_title.setObjectName("sectionTitle")
        layout.addWidget(self.skipped_title)
        self.skipped_table = QTableWidget(0, 2)
        self.skipped_table.setHorizontalHeaderLabels(("File", "Why it was skipped"))
        style_read_only_table(self.skipped_table, stretch_column=0)
        layout.addWidget(self.skipped_table, 1)
        self._show_progress(None)
        self._update_buttons()

    @property
    def available(self) -> bool:
        return not self.problem

    def start(self) -> None:
        """Start the indexing process (once): it reports the sources and starts watching."""
        if self.problem or self.client is not None:
            return
        self.client = LibraryClient(self.app.paths.home, self.app.safe_mode)
        self.client.message.connect(self._on_message)

    def shutdown(self) -> None:
        """Stop indexing and watching (the window calls this when it closes)."""
        if self.client is not None:
            client, self.client = self.client, None
            client.close()

    def _request(self, request: Request) -> None:
        self.start()
        if self.client is not None:
            self.client.process.send(request)

    # -- actions --------------------------------------------------------------------

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library")
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, path: Path) -> None:
        """Add ``path`` as a source and index it (``archivist index PATH``)."""
        if self.problem or self.busy or self.read_only:
            return
        self._begin(f"Adding {Path(path).name}…")
        self._request(IndexPaths((str(path),)))

    def sync(self) -> None:
        """Bring every source up to date."""
        if self.problem or self.busy or self.read_only:
            return
        self._begin("Checking for changes…")
        self._request(SyncSources())

    def remove_folder(self, path: str) -> None:
        """Forget a source and what was indexed from it (``archivist sources remove``)."""
        if self.problem or self.busy or self.read_only:
            return
        self._begin(f"Removing {Path(path).name}…")
        self._request(RemoveSource(path))

    def missing_sources(self) -> list[str]:
        """The sources gone from the disk (shown "missing"; their passages are not cited)."""
        return [s.path for s in self.state.sources if s.missing]

    def _confirm_prune(self) -> None:
        gone = self.missing_sources()
        if not gone or self.busy:
            return
        listed = "\n".join(gone[:10]) + (f"\n… and {len(gone) - 10} more" if len(gone) > 10 else "")
        answer = QMessageBox.question(
            self, "Remove missing folders",
            f"These folders are gone from the disk:\n\n{listed}\n\nForget them and what was indexed "
            "from them? The files themselves are not touched (they are already gone).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.prune()

    def prune(self) -> None:
        """Forget every missing source (``archivist sources prune``), one after the other."""
        gone = self.missing_sources()
        if self.problem or self.busy or self.read_only or not gone:
            return
        self._pruning = gone[1:]
        self._begin(f"Removing {len(gone)} missing folder{'s' if len(gone) > 1 else ''}…")
        self._request(RemoveSource(gone[0]))

    def cancel(self) -> None:
        if self.client is not None and self.busy:
            self.client.process.cancel()
            self.progress_label.setText("Stopping…")

    def _remove_selected(self) -> None:
        path = self.selected_source()
        if path:
            self.remove_folder(path)

    def ask_about(self, path: str) -> None:
        """Answer from the whole of ``path`` in a new conversation (the window does it)."""
        self.ask_about_file.emit(str(path))

    def _ask_about_selected(self) -> None:
        """The selected source when it is a file; else a file chosen in it (or anywhere)."""
        source = self.selected_source()
        if source is not None and Path(source).is_file():
            self.ask_about(source)
            return
        path, _filter = QFileDialog.getOpenFileName(self, "Ask about a file", source or "")
        if path:
            self.ask_about(path)

    def _source_menu(self, at: QPoint) -> None:
        item = self.sources_table.itemAt(at)
        if item is None:
            return
        self.sources_table.selectRow(item.row())
        source = self.selected_source()
        menu = QMenu(self)
        is_file = source is not None and Path(source).is_file()
        menu.addAction("Ask about this file" if is_file else "Ask about a file in this folder…",
                       self._ask_about_selected)
        menu.exec(self.sources_table.viewport().mapToGlobal(at))

    def selected_source(self) -> str | None:
        rows = self.sources_table.selectionModel().selectedRows()
        item = self.sources_table.item(rows[0].row(), 0) if rows else None
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _begin(self, text: str) -> None:
        self.busy = True
        self.error.setVisible(False)
        self._started_at = time.monotonic()
        self._root_started = {}
        self._show_progress(text)
        self._update_buttons()
        self.busy_changed.emit(True)

    def _end(self) -> None:
        self.busy = False
        self._show_progress(None)
        self._update_buttons()
        self.busy_changed.emit(False)

    # -- messages from the child ----------------------------------------------------

    def _on_message(self, message: object) -> None:
        if isinstance(message, LibraryState):
            self.state = message
            self._show_state()
        elif isinstance(message, Progress):
            self._on_progress(message.progress)
        elif isinstance(message, Report):
            self.last_report = message.report
            self.summary.setText(report_line(message.report))
            self._end()
            self.changed.emit()
            self.report_ready.emit(message.report)
        elif isinstance(message, Removed):
            self.summary.setText(f"Removed {message.path} ({message.files} files forgotten).")
            if self._pruning:
                self._request(RemoveSource(self._pruning.pop(0)))
                return
            self._end()
            self.changed.emit()
        elif isinstance(message, Cancelled):
            self.summary.setText("Indexing stopped. What was indexed is kept; "
                                 "“Check for changes” finishes the rest.")
            self._end()
            self.changed.emit()
        elif isinstance(message, Watched):
            report = message.report
            stamp = time.strftime("%H:%M")
            self.summary.setText(f"{stamp}: files changed on disk — {len(report.indexed)} indexed again, "
                                 f"{len(report.removed)} removed.")
            self.changed.emit()
        elif isinstance(message, Note):
            self.progress_label.setText(message.text)
        elif isinstance(message, (Failed, Fatal)):
            fatal = isinstance(message, Fatal)
            self.error.setText(("The library could not be opened: " if fatal else "Indexing failed: ") + message.text)
            self.error.setVisible(True)
            self._pruning = []
            if self.busy:
                self._end()
            if fatal:
                self.shutdown()
            self.failed.emit(message.text)

    def _on_progress(self, progress: SyncProgress) -> None:
        """Before each file (the bar counts files), and between batches of a big one
        (``part_done`` of ``part_total``: the bar moves inside the file too)."""
        done, total, path, root = progress.done, progress.total, progress.path, progress.root
        share = progress.part_done / progress.part_total if progress.part_total else 0.0
        if not progress.part_total:
            self.progressed.emit(done, total, path)
        now = time.monotonic()
        started = self._root_started.setdefault(root, now)
        self.progress.setVisible(True)
        # hundredths of a file, so one big file moves the bar too
        self.progress.setRange(0, max(total, 1) * 100)
        self.progress.setValue(int((done + share) * 100))
        self.progress.setFormat(f"{done} of {total} files")
        if not path:
            self.progress_label.setText(f"{Path(root).name}: {total} files checked")
            return
        left = ""
        if done + share > 0:
            remaining = (now - started) / (done + share) * (total - done - share)
            left = f" · about {_human(remaining)} left"
        if progress.stage == "ocr" and progress.part_total:  # scanned pages, read by OCR
            now_line = f"Now reading {Path(path).name} (OCR: {progress.part_done} of {progress.part_total} pages)"
        else:
            now_line = f"Now reading {Path(path).name}" + (f" ({share:.0%} embedded; already searchable by keyword)" if share else "")
        self.progress_label.setText(f"Indexing {Path(root).name}: {done} of {total} files done{left}\n{now_line}")

    def _show_progress(self, text: str | None) -> None:
        self.progress_label.setVisible(text is not None)
        self.progress.setVisible(False)
        if text is not None:
            self.progress_label.setText(text)
            self.progress.setRange(0, 0)  # busy until the first file is counted
            self.progress.setFormat("")
            self.progress.setVisible(True)

    def _show_state(self) -> None:
        self.read_only = self.state.read_only
        self.read_only_note.setText(self.read_only)
        self.read_only_note.setVisible(bool(self.read_only))
        sources = self.state.sources
        watching = set(self.state.watching)
        selected = self.selected_source()
        self.sources_table.setRowCount(len(sources))
        for row, source in enumerate(sources):
            name = QTableWidgetItem(source.path)
            name.setData(Qt.ItemDataRole.UserRole, source.path)
            name.setToolTip(f"Added {source.added_at}")
            self.sources_table.setItem(row, 0, name)
            for column, value in ((1, source.files), (2, source.passages), (3, source.skipped)):
                item = QTableWidgetItem(str(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.sources_table.setItem(row, column, item)
            watched = source.path in watching
            status = QTableWidgetItem("missing" if source.missing else ("watched" if watched else "not watched"))
            status.setToolTip("Gone from the disk: not cited; “Remove missing…” forgets it." if source.missing else
                              "Re-indexed by itself when files change, while Archivist runs." if watched else
                              "Use “Check for changes” to pick up edits.")
            self.sources_table.setItem(row, 4, status)
            if source.path == selected:
                self.sources_table.selectRow(row)
        skipped = self.state.skipped
        self.skipped_table.setRowCount(len(skipped))
        for row, entry in enumerate(skipped):
            item = QTableWidgetItem(Path(entry.path).name)
            item.setToolTip(entry.path)
            self.skipped_table.setItem(row, 0, item)
            self.skipped_table.setItem(row, 1, QTableWidgetItem(entry.reason or "skipped"))
        self.skipped_title.setText(f"Skipped files ({len(skipped)})" if skipped else "Skipped files: none")
        self.empty.setVisible(not sources)
        self._update_buttons()

    def _update_buttons(self) -> None:
        if self.problem:
            return
        may_change = not self.busy and not self.read_only
        self.add_button.setEnabled(may_change)
        self.remove_button.setEnabled(may_change and self.selected_source() is not None)
        self.sync_button.setEnabled(may_change and bool(self.state.sources))
        self.prune_button.setVisible(bool(self.missing_sources()))
        self.prune_button.setEnabled(may_change)
        self.cancel_button.setVisible(self.busy)

    # -- reading the page (tests, screenshots) --------------------------------------

    def source_paths(self) -> list[str]:
        return [s.path for s in self.state.sources]

    def skipped_rows(self) -> list[tuple[str, str]]:
        rows = []
        for r in range(self.skipped_table.rowCount()):
            path, reason = self.skipped_table.item(r, 0), self.skipped_table.item(r, 1)
            assert path is not None and reason is not None  # every row is filled in whole
            rows.append((path.toolTip(), reason.text()))
        return rows

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        QTimer.singleShot(0, self.start)


def report_line(report: SyncReport) -> str:
    """The CLI's summary line of a sync, for people."""
    return summary_line(report) + "."
