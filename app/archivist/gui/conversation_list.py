"""The conversations sidebar: new, rename, delete with undo, search.

Deleting is final in the store, so the sidebar holds a deletion back for
``UNDO_SECONDS``: the conversation disappears from the list at once, an Undo bar
appears, and only when the bar times out (or the window closes) is it deleted. Nothing
is lost to a slip of the Delete key.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from archivist.store.conversations import Conversations

UNDO_SECONDS = 8
ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    """Lists conversations, newest first; ``selected(id)`` or ``selected(None)`` for a new one."""

    selected = Signal(object)
    deleted = Signal(int)

    def __init__(self, conversations: Conversations, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.conversations = conversations
        self._pending: dict[int, str] = {}  # id -> title, deletions awaiting their timeout
        self._refreshing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.setSpacing(6)
        self.new_button = QPushButton("+  New conversation")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_conversation)
        layout.addWidget(self.new_button)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search conversations (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._search_timer.start)
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_renamed)
        layout.addWidget(self.list, 1)
        self.empty = QLabel("No conversations yet.")
        self.empty.setObjectName("hint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty, 1)

        self.undo_bar = QFrame()
        self.undo_bar.setObjectName("undoBar")
        bar = QHBoxLayout(self.undo_bar)
        bar.setContentsMargins(8, 4, 4, 4)
        self.undo_label = QLabel()
        self.undo_label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_delete)
        bar.addWidget(self.undo_label, 1)
        bar.addWidget(self.undo_button)
        self.undo_bar.setVisible(False)
        layout.addWidget(self.undo_bar)
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self.commit_deletions)
        self.refresh()

    # -- listing ------------------------------------------------------------------

    def refresh(self, select: int | None = None) -> None:
        """Reload from the store, keeping (or moving to) the selected conversation."""
        keep = self.current_id() if select is None else select
        self._refreshing = True
        try:
            self.list.clear()
            for record in self.conversations.list_conversations(self.search.text()):
                if record.id in self._pending:
                    continue
                item = QListWidgetItem(record.title or "Untitled")
                item.setData(ID_ROLE, record.id)
                item.setToolTip(f"{record.title}\n{record.message_count} messages · "
                                f"{record.updated_at:%Y-%m-%d %H:%M}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.addItem(item)
                if record.id == keep:
                    self.list.setCurrentItem(item)
        finally:
            self._refreshing = False
        searching = bool(self.search.text().strip())
        self.empty.setText("No conversation matches." if searching else "No conversations yet.")
        self.empty.setVisible(self.list.count() == 0)
        self.list.setVisible(self.list.count() > 0)

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else item.data(ID_ROLE)

    def ids(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def select(self, conversation_id: int | None) -> None:
        """Highlight a conversation without emitting ``selected`` (the chat already shows it)."""
        self._refreshing = True
        try:
            self.list.setCurrentRow(-1)  # what setCurrentItem(None) does
            for i in range(self.list.count()):
                if self.list.item(i).data(ID_ROLE) == conversation_id:
                    self.list.setCurrentItem(self.list.item(i))
        finally:
            self._refreshing = False

    def _current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        if not self._refreshing and current is not None:
            self.selected.emit(current.data(ID_ROLE))

    # -- actions ------------------------------------------------------------------

    def new_conversation(self) -> None:
        self.select(None)
        self.selected.emit(None)

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def rename(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())
        if title:
            self.conversations.rename(conversation_id, title)
        self.refresh()

    def _item_renamed(self, item: QListWidgetItem) -> None:
        if not self._refreshing:
            self.rename(item.data(ID_ROLE), item.text())

    def delete_current(self) -> None:
        conversation_id = self.current_id()
        if conversation_id is not None:
            self.delete(conversation_id)

    def delete(self, conversation_id: int) -> None:
        """Hide now, delete for good after the undo period."""
        self.commit_deletions()
        record = self.conversations.get_conversation(conversation_id)
        title = record.title if record else "conversation"
        self._pending[conversation_id] = title
        self.undo_label.setText(f"Deleted “{title}”.")
        self.undo_bar.setVisible(True)
        self._undo_timer.start()
        was_current = self.current_id() == conversation_id
        self.refresh()
        self.deleted.emit(conversation_id)
        if was_current:
            self.new_conversation()

    def undo_delete(self) -> None:
        self._undo_timer.stop()
        restored = list(self._pending)
        self._pending.clear()
        self.undo_bar.setVisible(False)
        self.refresh(select=restored[-1] if restored else None)
        if restored:
            self.selected.emit(restored[-1])

    def commit_deletions(self) -> None:
        """Delete for good what is waiting (on timeout, another delete, or closing)."""
        self._undo_timer.stop()
        for conversation_id in list(self._pending):
            self.conversations.delete(conversation_id)
        self._pending.clear()
        self.undo_bar.setVisible(False)

    def pending_deletions(self) -> list[int]:
        return list(self._pending)

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename (F2)", lambda: self.list.editItem(item))
        menu.addAction("Delete (Del)", lambda: self.delete(item.data(ID_ROLE)))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        key = event.key()
        if key == Qt.Key.Key_Delete and self.list.hasFocus():
            self.delete_current()
        elif key == Qt.Key.Key_F2:
            self.rename_current()
        else:
            super().keyPressEvent(event)
