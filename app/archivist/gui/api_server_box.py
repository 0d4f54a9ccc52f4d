"""The Settings page's "Local API" box: start and stop ``archivist serve`` from the window.

The server runs in the window's process, on a thread of its own (uvicorn's event loop):
each request's turn runs on a worker thread and the model answers from its child
process, as the window's own questions do, so the window stays responsive. The address
is shown; a key, when one is made, is shown once (only its hash is kept) with a button to
copy it. Starting and stopping run off the UI thread (binding and importing the web stack
take a moment); the server stops when the window quits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.workers import Task


class ApiServerBox(QWidget):
    """Start/stop the API over the application ``app()`` returns (the window's)."""

    def __init__(self, app: Callable[[], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._app = app
        self.server: Any = None
        self._tasks: set[Task] = set()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.host = QLineEdit("127.0.0.1")
        self.host.setToolTip("127.0.0.1: only programs on this computer. Another address lets other computers in, "
                             "and then every request needs the API key.")
        self.port = QSpinBox(minimum=0, maximum=65535, value=8765)
        self.port.setToolTip("0: any free port")
        self.new_key = QCheckBox("Make a new API key (the old one stops working)")
        address = QHBoxLayout()
        address.addWidget(self.host, 1)
        address.addWidget(QLabel(":"))
        address.addWidget(self.port)
        form.addRow("Address", address)
        form.addRow("", self.new_key)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.button = QPushButton("Start the API")
        self.button.clicked.connect(self.toggle)
        self.copy_button = QPushButton("Copy the key")
        self.copy_button.clicked.connect(self._copy_key)
        self.copy_button.setVisible(False)
        row.addWidget(self.button)
        row.addWidget(self.copy_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.status = QLabel("Off. Other programs (editors, notebooks, scripts) can ask Archivist through "
                             "an OpenAI-compatible API when it is on; see docs/api.md.")
        self.status.setWordWrap(True)
        self.status.setObjectName("hint")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self._key = ""
        instance = QCoreApplication.instance()
        if instance is not None:
            instance.aboutToQuit.connect(self.shutdown)

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.running

    def toggle(self) -> Task | None:
        return self.stop() if self.running else self.start()

    def start(self) -> Task | None:
        app = self._app()
        if app is None:
            self.status.setText("The window has no application yet.")
            return None
        from archivist.api.server import ApiServer
        from archivist.api.settings import ServeSettings

        settings = ServeSettings.from_config(app.config, host=self.host.text().strip() or "127.0.0.1",
                                             port=self.port.value())
        new_key = self.new_key.isChecked()
        self.button.setEnabled(False)
        self.status.setText("Starting…")
        return self._run(lambda: ApiServer(app, settings, new_key=new_key).start(), self._started,
                         "archivist-api-start")

    def _started(self, server: Any) -> None:
        self.server = server
        self.new_key.setChecked(False)
        self._key = server.key or ""
        s = server.settings
        lines = [f"On at <b>{s.url}</b> — base URL for OpenAI clients; models: <code>archivist</code> "
                 "(answers from your documents) and <code>archivist:nodocs</code>."]
        if self._key:
            lines.append(f"API key, shown once (only its hash is kept): <code>{self._key}</code>")
        elif s.needs_key:
            lines.append("Every request needs the API key made earlier; tick “Make a new API key” to replace it.")
        else:
            lines.append("No key needed on this computer (clients that insist on one may send any).")
        if not s.loopback:
            lines.append("<b>Other computers can reach it</b> (with the key); the connection is not encrypted.")
        self.status.setText("<br>".join(lines))
        self.copy_button.setVisible(bool(self._key))
        self.button.setText("Stop the API")
        self.button.setEnabled(True)

    def stop(self) -> Task | None:
        server, self.server = self.server, None
        if server is None:
            return None
        self.button.setEnabled(False)
        self.status.setText("Stopping…")
        return self._run(server.stop, lambda _result: self._stopped(), "archivist-api-stop")

    def _stopped(self) -> None:
        self._key = ""
        self.copy_button.setVisible(False)
        self.button.setText("Start the API")
        self.button.setEnabled(True)
        self.status.setText("Off.")

    def _failed(self, message: str) -> None:
        self.server = None
        self.button.setText("Start the API")
        self.button.setEnabled(True)
        self.status.setText(f"Could not start the API: {message}")

    def _copy_key(self) -> None:
        QGuiApplication.clipboard().setText(self._key)

    def _run(self, fn: Callable[[], Any], then: Callable[[Any], None], name: str) -> Task:
        task = Task(fn, name=name)
        self._tasks.add(task)
        task.ended.connect(lambda: self._tasks.discard(task))
        task.succeeded.connect(then)
        task.failed.connect(self._failed)
        return task.start()

    def shutdown(self) -> None:
        """Stop the server now (the window is closing)."""
        server, self.server = self.server, None
        if server is not None:
            server.stop(timeout_s=5)
