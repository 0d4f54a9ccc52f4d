"""The Models page's "Model servers" box: a bigger model on another machine.

A view over the core's :class:`~archivist.model_servers.ModelServers` (``app.servers``),
the same one ``archivist models add-server`` renders: add a server (address, optional
key, which model), use its model, remove it. It says plainly what leaves the computer.
Every action runs on a worker thread (adding one asks the server for its models).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.tables import style_read_only_table
from archivist.gui.workers import Task
from archivist.model_servers import PRIVACY_NOTE


class AddServerDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a model server")
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.name.setPlaceholderText("big-box")
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://gpu-box:8000/v1")
        self.model = QLineEdit()
        self.model.setPlaceholderText("the server's model (empty: its only one)")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional; kept in the system keychain")
        self.context = QSpinBox(minimum=0, maximum=10_000_000, value=0)
        self.context.setSpecialValueText("as the server says (else 4096)")
        self.context.setSuffix(" tokens")
        form.addRow("Name", self.name)
        form.addRow("Address", self.url)
        form.addRow("Model", self.model)
        form.addRow("API key", self.key)
        form.addRow("Context", self.context)
        note = QLabel("vLLM, llama.cpp's server, Ollama, LM Studio or another Archivist: any server that "
                      "speaks the OpenAI API.")
        note.setWordWrap(True)
        note.setObjectName("hint")
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, Any]:
        return {"name": self.name.text().strip(), "url": self.url.text().strip(),
                "model": self.model.text().strip() or None, "key": self.key.text() or None,
                "context_length": self.context.value() or None}


class ServersBox(QWidget):
    """Servers added, and the actions on them; ``model_chosen`` when one is made the model."""

    model_chosen = Signal()
    changed = Signal()

    def __init__(self, app: Any, show_error: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.show_error = show_error
        self._tasks: set[Task] = set()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("Model servers")
        heading.setObjectName("sectionTitle")
        layout.addWidget(heading)
        self.note = QLabel(html.escape(PRIVACY_NOTE))
        self.note.setWordWrap(True)
        self.note.setObjectName("hint")
        layout.addWidget(self.note)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(("Name", "Model", "Address", "Key"))
        style_read_only_table(self.table)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table)
        self.empty = QLabel("None added. A server lets a bigger model on another computer answer, "
                            "while your documents stay here.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add a server…")
        self.add_button.clicked.connect(self._ask_for_server)
        self.use_button = QPushButton("Use this model")
        self.use_button.clicked.connect(lambda: self._with_selected(self.use))
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self._with_selected(self.remove))
        for button in (self.add_button, self.use_button, self.remove_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> Task:
        return self._run(self.app.servers.models, self._show, "archivist-servers-refresh")

    def _show(self, infos: list[Any]) -> None:
        self.setVisible(True)
        self.table.setRowCount(len(infos))
        for row, info in enumerate(infos):
            name = QTableWidgetItem(info.id)
            name.setData(Qt.ItemDataRole.UserRole, info.id)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, QTableWidgetItem(str(info.metadata.get("model", ""))))
            self.table.setItem(row, 2, QTableWidgetItem(str(info.metadata.get("url", ""))))
            key = {"keyring": "in the keychain", "env": "from the environment"}.get(str(info.metadata.get("key")), "none")
            self.table.setItem(row, 3, QTableWidgetItem(key))
        self.table.setVisible(bool(infos))
        self.empty.setVisible(not infos)
        rows = sum(self.table.rowHeight(r) for r in range(len(infos)))
        self.table.setFixedHeight(self.table.horizontalHeader().height() + rows + 6)
        self.add_button.setEnabled(self.app.servers.available)
        self._update_buttons()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        item = self.table.item(rows[0].row(), 0) if rows else None
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _with_selected(self, action: Callable[[str], Any]) -> None:
        name = self.selected()
        if name:
            action(name)

    def _update_buttons(self) -> None:
        chosen = self.selected() is not None
        self.use_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def _ask_for_server(self) -> None:
        dialog = AddServerDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add(**dialog.values())

    def add(self, name: str, url: str, model: str | None = None, key: str | None = None,
            context_length: int | None = None) -> Task:
        """``archivist models add-server`` (the service's ``add``): asks the server first."""
        servers = self.app.servers
        self.add_button.setEnabled(False)

        def added(_info: Any) -> None:
            self.show_error("")
            self.refresh()
            self.changed.emit()

        return self._run(lambda: servers.add(name, url, model, key, None, context_length), added,
                         "archivist-server-add")

    def use(self, name: str) -> Task:
        def chosen(_info: Any) -> None:
            self.show_error("")
            self.changed.emit()
            self.model_chosen.emit()

        return self._run(lambda: self.app.models.use(name), chosen, "archivist-server-use")

    def remove(self, name: str) -> Task:
        def removed(_result: Any) -> None:
            self.refresh()
            self.changed.emit()

        return self._run(lambda: self.app.servers.remove(name), removed, "archivist-server-remove")

    def _run(self, fn: Callable[[], Any], then: Callable[[Any], Any], name: str) -> Task:
        task = Task(fn, name=name)
        self._tasks.add(task)
        task.ended.connect(lambda: self._tasks.discard(task))
        task.succeeded.connect(then)
        task.failed.connect(self._failed)
        return task.start()

    def _failed(self, message: str) -> None:
        self.add_button.setEnabled(self.app.servers.available)
        self.show_error(message)
