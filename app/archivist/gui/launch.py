"""Starting the window: the normal run, and ``--screenshot FILE [--demo]``.

The screenshot mode exists so the README's pictures and a CI job can be made headless
(``QT_QPA_PLATFORM=offscreen``): start the window, optionally ask one question in a
throwaway home and wait for the answer to finish, render, save the PNG, exit.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from archivist.gui.window import MainWindow
from archivist.gui.workers import Task

log = logging.getLogger(__name__)

DEMO_QUESTION = "How do I print hello world in Python? Answer with a short code block."
SCREENSHOT_TIMEOUT_S = 300


def qt_application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Archivist")
        app.setOrganizationName("Archivist")
        app.setDesktopFileName("archivist")
    return app  # type: ignore[return-value]


def demo_model(home: Path) -> str:
    """The model the demo answers with: the home's chosen model, else the built-in one.

    The built-in model is built into ``home`` once, exactly as
    ``archivist models build-default`` would, so later demos start at once.
    """
    from archivist.application import Application
    from archivist.errors import ArchivistError

    chosen = Application(home, load_entry_points=False)
    try:
        try:
            return chosen.model_info().path
        except ArchivistError:
            pass
        from archivist_models.default import build_default_model

        print("Building the built-in model for the demo (once)…", file=sys.stderr)
        return str(build_default_model(chosen.paths.models, chosen.paths.home / "cache"))
    finally:
        chosen.close()


def run_gui(
    home: Path | None,
    *,
    safe_mode: bool = False,
    screenshot: Path | None = None,
    demo: bool = False,
    app: Any = None,
) -> int:
    """Show the window until it closes; with ``screenshot``, save a PNG and exit.

    The window is shown first; the Application (database, migrations, plugins) is made
    on a worker thread and attached when ready, so the first paint does not wait. The
    command line passes the Application it already made as ``app`` (its database is
    still opened off the UI thread); the demo ignores it but for finding the model.
    The caller keeps ownership of a passed ``app`` and closes it.
    """
    qapp = qt_application()
    scratch: list[tempfile.TemporaryDirectory[str]] = []
    window = MainWindow()
    window.show()

    given = app
    owned: list[Any] = []

    def make_application() -> Any:
        from archivist.application import MODEL_SETTING, Application
        from archivist.config import resolve_home

        if demo:
            model = demo_model(given.paths.home if given is not None else resolve_home(home))
            scratch.append(tempfile.TemporaryDirectory(prefix="archivist-demo-"))
            made = Application(Path(scratch[0].name), safe_mode=safe_mode)
            owned.append(made)
            made.settings().set(MODEL_SETTING, model)
        elif given is not None:
            made = given
        else:
            made = Application(home, safe_mode=safe_mode)
            owned.append(made)
        made.settings().all()  # open the database (and migrate it) here, off the UI thread
        return made

    result = {"code": 0}

    def failed(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        result["code"] = 1
        if screenshot is None:
            window.show_startup_error(message)
        else:
            qapp.quit()

    shot = None
    if screenshot is not None:
        shot = Screenshot(window, Path(screenshot), DEMO_QUESTION if demo else None, result)
        shot.start()
    starter = Task(make_application, name="archivist-startup")
    starter.succeeded.connect(window.attach)
    starter.failed.connect(failed)
    starter.start()
    try:
        code = qapp.exec()
    finally:
        starter.wait()
        if window.app is not None:
            window.chat.shutdown()
        for made in owned:
            made.close()
        for folder in scratch:
            folder.cleanup()
    del shot
    return result["code"] or code


class Screenshot:
    """Waits for the window to be ready (and the demo answer to finish), then saves it."""

    def __init__(self, window: MainWindow, path: Path, question: str | None, result: dict[str, int]) -> None:
        self.window = window
        self.path = path
        self.question = question
        self.result = result

    def start(self) -> None:
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, self._timed_out)
        if self.question is None:
            self.window.attached.connect(lambda: QTimer.singleShot(300, self.save))
            return
        self.window.model_ready.connect(self._ask)

    def _ask(self, model: Any) -> None:
        if model is None:
            self.save(code=1)
            return
        self.window.chat.turn_finished.connect(lambda _answer: QTimer.singleShot(200, self.save))
        # The throwaway home has no documents yet (indexing them waits for the Library
        # page's core API), so the demo asks the model directly.
        self.window.chat.use_documents.setChecked(False)
        self.window.chat.ask(self.question)

    def _timed_out(self) -> None:
        print(f"error: no screenshot after {SCREENSHOT_TIMEOUT_S} s", file=sys.stderr)
        self.save(code=1)

    def save(self, code: int = 0) -> None:
        if self.window.app is not None:
            for view in self.window.chat.views():
                view.flush()
        QApplication.processEvents()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            print(f"error: could not write {self.path}", file=sys.stderr)
            code = 1
        else:
            print(f"saved {self.path}", file=sys.stderr)
        self.result["code"] = code
        self.window.close()
        QApplication.instance().quit()
