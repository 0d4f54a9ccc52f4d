"""The chat: a transcript of rendered messages, a composer, Send and Stop.

The turn runs in a :class:`TurnWorker` (never on the UI thread); its signals append to
the answer being written. Stop sets the turn's cancel event: the model stops within a
token and the partial answer is kept, marked as stopped. Regenerate and Edit rewind the
conversation by one turn on the worker thread, then ask again.

When more than one collection can answer (the user's library and shared ones), "Answer
from" chooses which, for this conversation: the choice is stored with it and restored
when it is shown again (:mod:`archivist.collection_choice`).

"Pin files…" pins files to the conversation: its questions are then answered from those
files whole (:mod:`archivist.whole_files`), shown as chips above the input, stored with
the conversation. A long file is read in parts; the answer's placeholder says which part
is being read.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from archivist.collection_choice import LIBRARY
from archivist.gui.message_view import MessageView
from archivist.gui.pinned_bar import PinnedFilesBar
from archivist.gui.preferences import Preferences
from archivist.gui.rewind import drop_last_turn
from archivist.gui.workers import TurnWorker
from archivist.store.conversations import Conversations, MessageRecord
from archivist.whole_files import pin_paths


class Composer(QPlainTextEdit):
    """Where the question is typed: Enter sends, Shift+Enter breaks the line."""

    submitted = Signal()
    edit_last = Signal()
    escaped = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        key, mods = event.key(), event.modifiers()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (mods & Qt.KeyboardModifier.ShiftModifier):
            self.submitted.emit()
        elif key == Qt.Key.Key_Up and not self.toPlainText():
            self.edit_last.emit()
        elif key == Qt.Key.Key_Escape:
            self.escaped.emit()
        else:
            super().keyPressEvent(event)


class ChatPage(QWidget):
    """One conversation at a time, asked and answered through the core's Assistant."""

    conversation_changed = Signal(object)  # the id now shown (after a turn saved it)
    busy_changed = Signal(bool)
    turn_finished = Signal(object)  # the Answer, or None when the turn failed

    def __init__(self, app: Any, prefs: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.prefs = prefs
        self.conversations = Conversations(app.database)
        self.conversation_id: int | None = None
        self.worker: TurnWorker | None = None
        self._editing = False
        self._last_turn_saved = False
        self._follow = True
        self._answer_view: MessageView | None = None
        self.collections: list[str] = [LIBRARY]  # what may answer (refresh_collections)
        self.choice: frozenset[str] | None = None  # what answers in this conversation; None: all
        self.pinned: list[str] = []  # files this conversation answers from whole

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.title = QLabel("New conversation")
        self.title.setObjectName("pageTitle")
        self.title.setContentsMargins(16, 10, 16, 6)
        layout.addWidget(self.title)

        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.transcript = QWidget()
        self.transcript.setObjectName("transcript")
        self.messages = QVBoxLayout(self.transcript)
        self.messages.setContentsMargins(16, 8, 16, 8)
        self.messages.setSpacing(10)
        self.welcome = QLabel(
            "<h2>Ask your documents anything</h2>"
            "<p>Answers come from the model on this computer, with numbered citations "
            "of the passages they rest on. Nothing leaves your machine.</p>"
            "<p>To ask about a whole file (\u201csummarise this report\u201d, \u201clist every deadline\u201d), "
            "pin it with <b>Pin files…</b> below.</p>"
            "<p>Enter sends · Shift+Enter for a new line · Esc stops an answer</p>"
        )
        self.welcome.setObjectName("welcome")
        self.welcome.setWordWrap(True)
        self.welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.messages.addWidget(self.welcome)
        self.messages.addStretch(1)
        self.scroll_area.setWidget(self.transcript)
        bar = self.scroll_area.verticalScrollBar()
        bar.rangeChanged.connect(self._keep_at_bottom)
        bar.valueChanged.connect(lambda v: setattr(self, "_follow", v >= bar.maximum() - 4))
        layout.addWidget(self.scroll_area, 1)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setVisible(False)
        layout.addWidget(self.banner)

        composer_row = QHBoxLayout()
        composer_row.setContentsMargins(16, 8, 16, 12)
        self.edit_hint = QLabel("Editing your last question · Esc cancels")
        self.edit_hint.setObjectName("hint")
        self.edit_hint.setVisible(False)
        column = QVBoxLayout()
        self.pinned_bar = PinnedFilesBar()
        self.pinned_bar.removed.connect(self.unpin_file)
        column.addWidget(self.pinned_bar)
        column.addWidget(self.edit_hint)
        self.use_documents = QCheckBox("Answer from my documents")
        self.use_documents.setToolTip("Off: the model answers from what it knows, without your files.")
        self.use_documents.setChecked(prefs.use_documents)
        self.use_documents.toggled.connect(self._documents_toggled)
        self.composer = Composer()
        self.composer.setObjectName("composer")
        self.composer.setPlaceholderText("Ask a question…")
        self.composer.setFixedHeight(72)
        self.composer.submitted.connect(self.send)
        self.composer.edit_last.connect(self.edit_last)
        self.composer.escaped.connect(self.escape)
        column.addWidget(self.composer)
        options_row = QHBoxLayout()
        self.pin_button = QPushButton("Pin files…")
        self.pin_button.setObjectName("pinButton")
        self.pin_button.setToolTip("Answer from whole files (\u201csummarise this report\u201d), pinned to "
                                   "this conversation")
        self.pin_button.clicked.connect(self._choose_files)
        options_row.addWidget(self.pin_button)
        options_row.addWidget(self.use_documents)
        self.answer_from = QToolButton()
        self.answer_from.setObjectName("answerFrom")
        self.answer_from.setToolTip("Which collections answer in this conversation: your library, shared ones")
        self.answer_from.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.answer_menu = QMenu(self.answer_from)
        self.answer_from.setMenu(self.answer_menu)
        self.answer_from.setVisible(False)
        options_row.addWidget(self.answer_from)
        options_row.addStretch(1)
        column.addLayout(options_row)
        composer_row.addLayout(column, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.setToolTip("Send (Enter)")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setVisible(False)
        composer_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        composer_row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(composer_row)

    def _documents_toggled(self, on: bool) -> None:
        self.prefs.use_documents = on
        self.app.settings().set("gui.use_documents", on)
        self._show_choice()

    # -- which collections answer ---------------------------------------------------

    def refresh_collections(self) -> None:
        """Offer the collections the assistant knows now; "Answer from" shows when there
        is more than one (the window calls this once the plugins are collected)."""
        self.collections = self.app.assistant().collections()
        self.answer_menu.clear()
        for name in self.collections:
            action = self.answer_menu.addAction("My library" if name == LIBRARY else name)
            action.setCheckable(True)
            action.setData(name)
            action.toggled.connect(lambda _on, action=action: self._choice_toggled(action))
        self.answer_from.setVisible(len(self.collections) > 1)
        self._show_choice()

    def collection_actions(self) -> list[QAction]:
        return [a for a in self.answer_menu.actions() if a.isCheckable()]

    def _show_choice(self) -> None:
        for action in self.collection_actions():
            action.blockSignals(True)
            action.setChecked(self.choice is None or action.data() in self.choice)
            action.blockSignals(False)
        checked = [a.text() for a in self.collection_actions() if a.isChecked()]
        everything = self.choice is None or len(checked) == len(self.collection_actions())
        self.answer_from.setText("Answer from: " + ("all" if everything else ", ".join(checked)))
        # (not while a turn runs: it stores the choice it was asked with when it ends;
        # nor while files are pinned: the answers come from them, not the collections)
        self.answer_from.setEnabled(self.use_documents.isChecked() and not self.busy and not self.pinned)
        self.answer_from.setVisible(len(self.collections) > 1 and not self.pinned)
        self.use_documents.setVisible(not self.pinned)

    def _choice_toggled(self, toggled: QAction) -> None:
        checked = {str(a.data()) for a in self.collection_actions() if a.isChecked()}
        if not checked:  # something must answer: the last one stays
            toggled.blockSignals(True)
            toggled.setChecked(True)
            toggled.blockSignals(False)
            return
        self.choose_collections(None if checked == set(self.collections) else frozenset(checked))

    def choose_collections(self, choice: frozenset[str] | None) -> None:
        """Answer from ``choice`` (names; None: all) in this conversation, from now on;
        a stored conversation keeps it at once."""
        self.choice = choice
        if self.conversation_id is not None:
            self.conversations.choose_collections(self.conversation_id, choice)
        self._show_choice()

    # -- pinned files ----------------------------------------------------------------

    def _choose_files(self) -> None:
        paths, _filter = QFileDialog.getOpenFileNames(self, "Pin files to this conversation")
        if paths:
            self.pin_files(paths)

    def pin_files(self, paths: list[str]) -> None:
        """Answer from ``paths`` too, whole, in this conversation from now on; a stored
        conversation keeps them at once (a new one with its first answer)."""
        self._set_pins(pin_paths([*self.pinned, *paths]))
        self.composer.setFocus()

    def unpin_file(self, path: str) -> None:
        self._set_pins([p for p in self.pinned if p != path])

    def _set_pins(self, paths: list[str]) -> None:
        if self.busy:  # the turn running reads the pins it was asked with
            return
        self.pinned = paths
        if self.conversation_id is not None:
            self.conversations.pin_files(self.conversation_id, paths)
        self._show_pins()

    def _show_pins(self) -> None:
        self.pinned_bar.set_files(self.pinned)
        self.composer.setPlaceholderText(
            "Ask about the pinned files… (\u201csummarise this\u201d, \u201clist every deadline\u201d)"
            if self.pinned else "Ask a question…")
        self._show_choice()

    # -- state --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def views(self) -> list[MessageView]:
        out = []
        for i in range(self.messages.count()):
            item = self.messages.itemAt(i)
            widget = item.widget() if item is not None else None
            if isinstance(widget, MessageView):
                out.append(widget)
        return out

    def _set_busy(self, busy: bool) -> None:
        self.pin_button.setEnabled(not busy)
        self.pinned_bar.setEnabled(not busy)
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)
        self._show_choice()
        self._mark_last()
        self.busy_changed.emit(busy)

    def _mark_last(self) -> None:
        views = self.views()
        last_user = max((i for i, v in enumerate(views) if v.role == "user"), default=-1)
        for i, view in enumerate(views):
            view.set_last(i >= last_user and last_user >= 0, busy=self.busy and i >= last_user)

    def _keep_at_bottom(self, _low: int, high: int) -> None:
        if self._follow:
            self.scroll_area.verticalScrollBar().setValue(high)

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    # -- conversations ------------------------------------------------------------

    def show_conversation(self, conversation_id: int | None) -> None:
        """Show a stored conversation (None: a new, empty one)."""
        self._detach_worker()
        self._cancel_edit()
        for view in self.views():
            self.messages.removeWidget(view)
            view.deleteLater()
        self.conversation_id = conversation_id
        self._last_turn_saved = conversation_id is not None
        records = self.conversations.messages(conversation_id) if conversation_id is not None else []
        for record in records:
            self._add_view(self._view_for(record))
        conversation = self.conversations.get_conversation(conversation_id) if conversation_id else None
        self.title.setText(conversation.title if conversation else "New conversation")
        self.choice = conversation.collections if conversation else None
        self.pinned = list(conversation.pinned_files) if conversation else []
        self._show_pins()
        self.welcome.setVisible(not records)
        self._follow = True
        self._mark_last()
        self.composer.setFocus()

    def _view_for(self, record: MessageRecord) -> MessageView:
        view = MessageView(record.role, record.text)
        if record.role == "assistant":
            for verdict in record.safety:
                view.add_safety(str(verdict.get("action", "")), str(verdict.get("reason", "")),
                                list(verdict.get("categories", ())))
            view.set_citations(record.citations)
            view.set_stats(_stats_line(record.model, record.provider, record.stats))
            view.flush()
        return view

    def _add_view(self, view: MessageView) -> MessageView:
        self.messages.insertWidget(self.messages.count() - 1, view)
        view.regenerate_requested.connect(self.regenerate)
        view.edit_requested.connect(self.edit_last)
        return view

    # -- asking -------------------------------------------------------------------

    def send(self) -> None:
        question = self.composer.toPlainText().strip()
        if not question or self.busy:
            return
        rewind = self._editing and self._last_turn_saved
        if self._editing:
            self._remove_last_turn_views()
        self._cancel_edit()
        self.composer.clear()
        self.ask(question, rewind=rewind)

    def ask(self, question: str, *, rewind: bool = False) -> TurnWorker | None:
        """Start a turn on the worker thread; returns the worker (None if busy)."""
        if self.busy:
            return None
        self.show_banner("")
        self.welcome.setVisible(False)
        self._add_view(MessageView("user", question))
        self._answer_view = self._add_view(MessageView("assistant"))
        self._follow = True
        conversation_id = self.conversation_id
        prepare = None
        if rewind and conversation_id is not None:
            conversations = self.conversations

            def prepare() -> int:
                return drop_last_turn(conversations, conversation_id)

        self.prefs.apply(self.app.config)
        worker = TurnWorker(
            self.app.assistant(),
            question,
            conversation_id=conversation_id,
            stream_kwargs={**self.prefs.stream_kwargs(), "collections": self.choice, "files": list(self.pinned)},
            prepare=prepare,
        )
        # Slots ignore a worker that was detached (the user moved to another conversation).
        def mine(slot: Any) -> Any:
            return lambda *args: slot(*args) if worker is self.worker else None

        worker.sources.connect(mine(self._on_sources))
        worker.progress.connect(mine(self._on_progress))
        worker.text.connect(mine(self._on_text))
        worker.notice.connect(mine(self._on_notice))
        worker.done.connect(mine(self._on_done))
        worker.failed.connect(mine(self._on_failed))
        worker.ended.connect(mine(self._on_ended))
        self.worker = worker
        self._last_turn_saved = False
        self._set_busy(True)
        worker.start()
        return worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def escape(self) -> None:
        if self.busy:
            self.stop()
        elif self._editing:
            self._cancel_edit()
            self.composer.clear()

    def regenerate(self) -> None:
        """Ask the last question again, replacing its answer."""
        if self.busy:
            return
        views = self.views()
        question = next((v.text() for v in reversed(views) if v.role == "user"), None)
        if question is None:
            return
        rewind = self._last_turn_saved
        self._remove_last_turn_views()
        self.ask(question, rewind=rewind)

    def edit_last(self) -> None:
        """Put the last question back in the composer; sending replaces that turn."""
        if self.busy:
            return
        question = next((v.text() for v in reversed(self.views()) if v.role == "user"), None)
        if question is None:
            return
        self._editing = True
        self.edit_hint.setVisible(True)
        self.composer.setPlainText(question)
        self.composer.setFocus()
        cursor = self.composer.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.composer.setTextCursor(cursor)

    def _cancel_edit(self) -> None:
        self._editing = False
        self.edit_hint.setVisible(False)

    def copy_last_answer(self) -> None:
        answers = [v for v in self.views() if v.role == "assistant"]
        if answers:
            answers[-1].copy()

    def _remove_last_turn_views(self) -> None:
        views = self.views()
        last_user = max((i for i, v in enumerate(views) if v.role == "user"), default=None)
        if last_user is None:
            return
        for view in views[last_user:]:
            self.messages.removeWidget(view)
            view.deleteLater()

    # -- worker signals -----------------------------------------------------------

    def _on_sources(self, passages: Any) -> None:
        if self._answer_view is not None:
            self._answer_view.set_sources(passages)

    def _on_progress(self, line: str) -> None:
        """How far reading the pinned files is, in the answer's place until it starts."""
        if self._answer_view is not None:
            self._answer_view.placeholder.setText(f"{line}…")
            self._answer_view.set_stats(line)

    def _on_text(self, text: str) -> None:
        if self._answer_view is not None:
            self._answer_view.append(text)

    def _on_notice(self, reason: str, verdict: Any) -> None:
        if self._answer_view is None:
            return
        if verdict is None:
            self._answer_view.add_safety("warn", reason)
        else:
            self._answer_view.add_safety(verdict.action.value, reason or verdict.reason, verdict.categories)

    def _on_done(self, answer: Any) -> None:
        view = self._answer_view
        if view is not None:
            if answer.text != view.text().strip():
                view.set_text(answer.text)
            view.set_citations(answer.citations)
            # The answer's verdicts are the full list (a redacted question, for one, comes
            # with no notice event), so the markers are rebuilt from them as on reload.
            view.clear_safety()
            for verdict in answer.verdicts:
                view.add_safety(verdict.action.value, verdict.reason, verdict.categories)
            stats = _stats_line(answer.model, answer.provider, {**answer.stats.to_dict(), **answer.timings})
            view.set_stats(stats)
            view.flush()
        self.conversation_id = answer.conversation_id
        self._last_turn_saved = True
        record = self.conversations.get_conversation(answer.conversation_id)
        if record is not None:
            self.title.setText(record.title)
        self.conversation_changed.emit(answer.conversation_id)
        self.turn_finished.emit(answer)

    def _on_failed(self, message: str) -> None:
        if self._answer_view is not None:
            self._answer_view.set_stats("Not answered")
            self._answer_view.flush()
        self.show_banner(f"Could not answer: {message}")
        self.turn_finished.emit(None)

    def _on_ended(self) -> None:
        self.worker = None
        if self._answer_view is not None:
            self._answer_view.flush()
        self._answer_view = None
        self._set_busy(False)

    def _detach_worker(self) -> None:
        """Stop the running turn and stop listening to it; it still saves what it has."""
        worker = self.worker
        if worker is None:
            return
        worker.stop()
        worker.wait(10)
        self.worker = None
        self._answer_view = None
        self._set_busy(False)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop a running turn and wait for it, so the database closes cleanly."""
        worker = self.worker
        if worker is not None:
            worker.stop()
            worker.wait(timeout)


def _stats_line(model: str | None, provider: str | None, stats: dict[str, Any]) -> str:
    parts = [p for p in (model, provider) if p]
    tokens = stats.get("completion_tokens")
    if tokens:
        parts.append(f"{tokens} tokens")
    rate = stats.get("tokens_per_s")
    if rate:
        parts.append(f"{rate:.1f} tok/s")
    if stats.get("map_parts"):
        parts.append(f"read in {int(stats['map_parts'])} parts")
    if stats.get("finish_reason") == "cancelled":
        parts.append("stopped")
    elif stats.get("finish_reason") == "repetition":  # archivist.repetition
        parts.append("ended where the model began repeating itself")
    return " · ".join(parts)
