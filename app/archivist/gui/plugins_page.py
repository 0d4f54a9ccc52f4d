"""The Plugins page: what is installed, where it came from, whether it is on, what failed.

Reads the plugin host's records, the same ones ``archivist plugins list`` prints. A
plugin that raised was switched off by the host for this session; its error is shown
here and in the window's banner. The Enabled box switches a plugin on or off for this
session through its record, which the host consults on every call.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("Plugin", "Version", "Origin", "Enabled", "Problem")
ERROR_COLOUR = QColor("#c0392b")


class PluginsPage(QWidget):
    """A table of plugin records; ``refresh()`` after the host reports an error."""

    def __init__(self, host: Any, parent: QWidget | None = None, *, remember: Any = None) -> None:
        super().__init__(parent)
        self.host = host
        # Called with (name, enabled) to keep the choice for the next start
        # (Application.set_plugin_enabled); the switch applies to this session at once.
        self.remember = remember
        self._refreshing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Plugins")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        note = QLabel(
            "Built-in features are plugins too. A plugin that raises an error is switched "
            "off for the session and the rest of Archivist carries on. "
            "Start with <code>--safe-mode</code> to leave third-party plugins off."
        )
        note.setWordWrap(True)
        note.setObjectName("hint")
        layout.addWidget(note)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._toggled)
        layout.addWidget(self.table, 1)
        self.refresh()

    def refresh(self) -> None:
        self._refreshing = True
        try:
            records = list(self.host.records.values())
            self.table.setRowCount(len(records))
            for row, record in enumerate(records):
                name = QTableWidgetItem(record.name)
                name.setToolTip(record.module)
                name.setData(Qt.ItemDataRole.UserRole, record.name)
                self.table.setItem(row, 0, name)
                self.table.setItem(row, 1, QTableWidgetItem(record.version or "—"))
                self.table.setItem(row, 2, QTableWidgetItem(record.origin))
                enabled = QTableWidgetItem("on" if record.enabled else "off")
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if record.origin != "core":  # the core's own backend is not optional
                    flags |= Qt.ItemFlag.ItemIsUserCheckable
                enabled.setFlags(flags)
                enabled.setCheckState(Qt.CheckState.Checked if record.enabled else Qt.CheckState.Unchecked)
                enabled.setData(Qt.ItemDataRole.UserRole, record.name)
                self.table.setItem(row, 3, enabled)
                problem = QTableWidgetItem(
                    "\n".join(f"{e.where}: {e.message}" for e in record.errors) or ""
                )
                if record.errors:
                    problem.setForeground(QBrush(ERROR_COLOUR))
                    problem.setToolTip(problem.text())
                self.table.setItem(row, 4, problem)
            self.table.resizeRowsToContents()
        finally:
            self._refreshing = False

    def row_of(self, name: str) -> int | None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == name:
                return row
        return None

    def problem_of(self, name: str) -> str:
        row = self.row_of(name)
        item = None if row is None else self.table.item(row, 4)
        return "" if item is None else item.text()

    def set_enabled(self, name: str, enabled: bool) -> None:
        record = self.host.records.get(name)
        if record is not None and record.origin != "core":
            record.enabled = enabled
            if self.remember is not None:
                self.remember(name, enabled)
        self.refresh()

    def _toggled(self, item: QTableWidgetItem) -> None:
        if self._refreshing or item.column() != 3:
            return
        self.set_enabled(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)
