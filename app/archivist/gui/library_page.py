"""The Library page: the folders Archivist answers from, indexing progress, skipped files.

A thin view over the FAISS retrieval plugin's index, driven exactly as ``archivist
index`` / ``archivist sources`` drive it, in a child process (:mod:`library_service`)
so that parsing and embedding never stall the window. Everything shown comes from the
index (its sources, its files with their skip reasons) or from a sync's report.

When the plugin is not installed, or is switched off, the page says so and offers
nothing else: there is no other index to add folders to.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.library_service import PLUGIN, LibraryService
from archivist.gui.tables import style_read_only_table
from archivist.gui.workers import emit


def plugin_problem(host: Any) -> str:
    """Why the Library cannot work here, in a sentence; "" when it can."""
    import importlib.util

    record = host.records.get(PLUGIN)
    if record is None or importlib.util.find_spec("archivist_faiss") is None:
        return ("Document search is not installed: the built-in retrieval plugin "
                f"“{PLUGIN}” (package archivist_faiss) was not found, so there is nothing "
                "to add folders to. Reinstall Archivist to get it back.")
    if not record.enabled:
        why = record.errors[-1].message if record.errors else "you switched it off"
        return (f"Document search is off: the retrieval plugin “{PLUGIN}” is disabled ({why}). "
                "Switch it on in Plugins and restart Archivist to index folders; until then "
                "answers come from the model alone.")
    return ""


class LibraryClient(QObject):
    """The service's messages as a Qt signal (delivered on the UI thread)."""

    message = Signal(object)  # the tuple the child sent
    ended = Signal()

    def __init__(self, home: Path, safe_mode: bool) -> None:
        super().__init__()
        self.service = LibraryService(home, safe_mode=safe_mode)
        self._reader = threading.Thread(target=self._read, name="archivist-library-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            message = self.service.receive()
            if message is None:
                break
            emit(self.message, message)
            if message[0] == "fatal":
                break
        emit(self.ended)

    def close(self) -> None:
        self.service.close()
        self._reader.join(5)


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min"


class LibraryPage(QWidget):
    """Folders, their indexing, and what was skipped; ``changed`` after the index moved."""

    changed = Signal()  # the index has new, changed or removed passages
    busy_changed = Signal(bool)
    report_ready = Signal(object)  # the finished sync's report (a dict)
    failed = Signal(str)  # a request failed, or the index could not be opened
    progressed = Signal(int, int, str)  # files done, files in the folder, the file now read

    def __init__(self, app: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.client: LibraryClient | None = None
        self.state: dict[str, Any] = {"sources": [], "skipped": [], "watching": []}
        self.last_report: dict[str, Any] | None = None
        self.busy = False
        self._started_at = 0.0
        self._root_started: dict[str, float] = {}
        self._files: tuple[int, int] = (0, 1)  # (done, total) of the last "progress" message

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Library")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        self.problem = plugin_problem(app.host)
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
        self.cancel_button = QPushButton("Stop indexing")
        self.cancel_button.clicked.connect(self.cancel)
        for button in (self.add_button, self.remove_button, self.sync_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.empty = QLabel("No folders yet: “Add folder…” picks one. Nothing leaves this computer.")
        layout.addWidget(self.empty)
        self.sources_table = QTableWidget(0, 5)
        self.sources_table.setHorizontalHeaderLabels(("Folder", "Files", "Passages", "Skipped", "Changes"))
        style_read_only_table(self.sources_table, stretch_column=0)
        self.sources_table.itemSelectionChanged.connect(self._update_buttons)
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

    def _request(self, *request: Any) -> None:
        self.start()
        if self.client is not None:
            self.client.service.request(*request)

    # -- actions --------------------------------------------------------------------

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library")
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, path: Path) -> None:
        """Add ``path`` as a source and index it (``archivist index PATH``)."""
        if self.problem or self.busy:
            return
        self._begin(f"Adding {Path(path).name}…")
        self._request("index", [str(path)])

    def sync(self) -> None:
        """Bring every source up to date."""
        if self.problem or self.busy:
            return
        self._begin("Checking for changes…")
        self._request("sync")

    def remove_folder(self, path: str) -> None:
        """Forget a source and what was indexed from it (``archivist sources remove``)."""
        if self.problem or self.busy:
            return
        self._begin(f"Removing {Path(path).name}…")
        self._request("remove", path)

    def cancel(self) -> None:
        if self.client is not None and self.busy:
            self.client.service.cancel()
            self.progress_label.setText("Stopping…")

    def _remove_selected(self) -> None:
        path = self.selected_source()
        if path:
            self.remove_folder(path)

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

    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "state":
            self.state = message[1]
            self._show_state()
        elif kind == "progress":
            self._files = message[1:3]
            self._on_progress(*message[1:])
        elif kind == "part":
            self._on_part(*message[1:])
        elif kind == "report":
            self.last_report = message[1]
            self.summary.setText(report_line(message[1]))
            self._end()
            self.changed.emit()
            self.report_ready.emit(message[1])
        elif kind == "removed":
            self.summary.setText(f"Removed {message[1]} ({message[2]} files forgotten).")
            self._end()
            self.changed.emit()
        elif kind == "cancelled":
            self.summary.setText("Indexing stopped. What was indexed is kept; "
                                 "“Check for changes” finishes the rest.")
            self._end()
            self.changed.emit()
        elif kind == "watched":
            report = message[1]
            stamp = time.strftime("%H:%M")
            self.summary.setText(f"{stamp}: files changed on disk — {len(report['indexed'])} indexed again, "
                                 f"{len(report['removed'])} removed.")
            self.changed.emit()
        elif kind == "note":
            self.progress_label.setText(str(message[1]))
        elif kind in ("error", "fatal"):
            self.error.setText(("Indexing failed: " if kind == "error" else "The index could not be opened: ")
                               + str(message[1]))
            self.error.setVisible(True)
            if self.busy:
                self._end()
            if kind == "fatal":
                self.shutdown()
            self.failed.emit(str(message[1]))

    def _on_progress(self, done: int, total: int, path: str, root: str, share: float = 0.0) -> None:
        """``share``: how much of the file ``path`` is embedded, from a "part" message."""
        if not share:
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
        now_line = f"Now reading {Path(path).name}" + (f" ({share:.0%} embedded)" if share else "")
        self.progress_label.setText(f"Indexing {Path(root).name}: {done} of {total} files done{left}\n{now_line}")

    def _on_part(self, path: str, done: int, total: int, root: str) -> None:
        files_done, files_total = self._files
        self._on_progress(files_done, files_total, path, root, share=done / max(total, 1))

    def _show_progress(self, text: str | None) -> None:
        self.progress_label.setVisible(text is not None)
        self.progress.setVisible(False)
        if text is not None:
            self.progress_label.setText(text)
            self.progress.setRange(0, 0)  # busy until the first file is counted
            self.progress.setFormat("")
            self.progress.setVisible(True)

    def _show_state(self) -> None:
        sources = self.state.get("sources", [])
        watching = set(self.state.get("watching", []))
        selected = self.selected_source()
        self.sources_table.setRowCount(len(sources))
        for row, source in enumerate(sources):
            name = QTableWidgetItem(source["path"])
            name.setData(Qt.ItemDataRole.UserRole, source["path"])
            name.setToolTip(f"Added {source.get('added_at', '')}")
            self.sources_table.setItem(row, 0, name)
            for column, key in ((1, "indexed"), (2, "chunks"), (3, "skipped")):
                item = QTableWidgetItem(str(source.get(key, 0)))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.sources_table.setItem(row, column, item)
            watched = source["path"] in watching
            status = QTableWidgetItem("watched" if watched else ("missing" if not Path(source["path"]).exists()
                                                                 else "not watched"))
            status.setToolTip("Re-indexed by itself when files change, while Archivist runs." if watched else
                              "Use “Check for changes” to pick up edits.")
            self.sources_table.setItem(row, 4, status)
            if source["path"] == selected:
                self.sources_table.selectRow(row)
        skipped = self.state.get("skipped", [])
        self.skipped_table.setRowCount(len(skipped))
        for row, entry in enumerate(skipped):
            item = QTableWidgetItem(Path(entry["path"]).name)
            item.setToolTip(entry["path"])
            self.skipped_table.setItem(row, 0, item)
            self.skipped_table.setItem(row, 1, QTableWidgetItem(entry.get("reason") or "skipped"))
        self.skipped_title.setText(f"Skipped files ({len(skipped)})" if skipped else "Skipped files: none")
        self.empty.setVisible(not sources)
        self._update_buttons()

    def _update_buttons(self) -> None:
        if self.problem:
            return
        self.add_button.setEnabled(not self.busy)
        self.remove_button.setEnabled(not self.busy and self.selected_source() is not None)
        self.sync_button.setEnabled(not self.busy and bool(self.state.get("sources")))
        self.cancel_button.setVisible(self.busy)

    # -- reading the page (tests, screenshots) --------------------------------------

    def source_paths(self) -> list[str]:
        return [s["path"] for s in self.state.get("sources", [])]

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


def report_line(report: dict[str, Any]) -> str:
    """The CLI's summary line of a sync, for people."""
    return (f"{len(report['indexed'])} indexed ({report['pages']} pages, {report['chunks']} passages), "
            f"{report['unchanged']} unchanged, {len(report['removed'])} removed, "
            f"{len(report['skipped'])} skipped in {report['seconds']:.1f} s.")
