"""Starting the window: the normal run, and ``--screenshot FILE [--demo]``.

The screenshot mode exists so the README's pictures and a CI job can be made headless
(``QT_QPA_PLATFORM=offscreen``): start the window, render, save the PNG, exit. With
``--demo`` it first works in a throwaway home: the Library indexes this project's
``docs/`` folder, one question is asked and answered to the end with its citations,
and only then is the picture taken. ``ARCHIVIST_SCREENSHOT_PAGE`` names another page
to picture after that (the README's Library and Models pictures).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from archivist.gui.window import DEFAULT_SIZE, MainWindow
from archivist.gui.workers import Task

log = logging.getLogger(__name__)

DEMO_QUESTION = "Where does Archivist keep my data?"
DEMO_MAX_TOKENS = 60  # the built-in model is small and tends to loop on long answers
# --demo indexes docs/ and answers first: about 75 s of CPU, several times that in wall
# time on a busy 2-core machine (222 s at load 3-4); under the test's own 600 s limit.
SCREENSHOT_TIMEOUT_S = 540
PAGE_VARIABLE = "ARCHIVIST_SCREENSHOT_PAGE"


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
        print("Building the built-in model for the demo (once)…", file=sys.stderr)
        return str(chosen.models.build_default().model)
    finally:
        chosen.close()


def demo_docs() -> Path | None:
    """The documents the demo indexes: this project's ``docs/`` (None where not shipped)."""
    import archivist

    folder = Path(archivist.__file__).resolve().parents[2] / "docs"
    return folder if folder.is_dir() and any(folder.glob("*.md")) else None


def share_embedder(home: Path, demo_home: Path) -> None:
    """Give the throwaway home the search encoder of ``home`` (built there once if needed).

    A link where the platform allows one, else a copy. Indexing never downloads by
    itself, but asking for the demo is asking for what ``archivist models build-default``
    makes, so a missing encoder is built here the same way (the chat model is too).
    """
    import shutil

    from archivist.model_service import ModelService

    source = ModelService(Path(home) / "models").search_encoder(
        progress=lambda message: print(f"Building the search encoder for the demo (once): {message}",
                                       file=sys.stderr))
    target = demo_home / "models" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source, target_is_directory=True)
    except OSError:
        shutil.copytree(source, target)


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
        from archivist.application import Application
        from archivist.config import resolve_home
        from archivist.model_service import MODEL_SETTING

        if demo:
            user_home = given.paths.home if given is not None else resolve_home(home)
            model = demo_model(user_home)
            scratch.append(tempfile.TemporaryDirectory(prefix="archivist-demo-"))
            demo_home = Path(scratch[0].name)
            if demo_docs() is not None:
                share_embedder(user_home, demo_home)
            made = Application(demo_home, safe_mode=safe_mode)
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
            window.library.shutdown()
            window.models_page.shutdown()
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
        self.saved = False

    def start(self) -> None:
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, self._timed_out)
        if self.question is None:
            self.window.attached.connect(self._plain)
            return
        self.window.model_ready.connect(self._ask)

    def _plain(self) -> None:
        page = os.environ.get(PAGE_VARIABLE)
        if page:
            # A page's picture shows it settled: the model loaded (or not), the page's
            # own background reads done.
            self.window.show_page(page)
            self.window.model_ready.connect(lambda _model: QTimer.singleShot(1000, self.save))
            return
        QTimer.singleShot(300, self.save)

    def _ask(self, model: Any) -> None:
        if model is None:
            self.save(code=1)
            return
        docs = demo_docs()
        library = self.window.library
        if docs is None or not library.available:
            self.window.chat.use_documents.setChecked(False)
            self._send()
            return
        # Index docs/ through the Library page, as a user adding the folder would.
        self.window.show_page("Library")
        library.report_ready.connect(self._indexed)
        library.failed.connect(self._not_indexed)
        library.add_folder(docs)

    def _indexed(self, report: Any) -> None:
        self.window.library.report_ready.disconnect(self._indexed)
        self.window.library.failed.disconnect(self._not_indexed)
        print(f"indexed {len(report.indexed)} files of docs/ for the demo", file=sys.stderr)
        self.window.show_page("Chat")
        self._send()

    def _not_indexed(self, message: str) -> None:
        print(f"error: the demo could not index docs/: {message}", file=sys.stderr)
        self.save(code=1)

    def _send(self) -> None:
        self.window.prefs.max_new_tokens = DEMO_MAX_TOKENS
        self.window.chat.turn_finished.connect(self._answered)
        assert self.question is not None  # only the demo sends, and it has its question
        self.window.chat.ask(self.question)

    def _answered(self, answer: Any) -> None:
        if answer is not None:
            cited = sum(1 for c in answer.citations if c.cited)
            print(f"answered with {len(answer.citations)} sources ({cited} cited)", file=sys.stderr)
        page = os.environ.get(PAGE_VARIABLE)
        if page:
            self.window.show_page(page)
        QTimer.singleShot(500 if page else 200, self.save)

    def _timed_out(self) -> None:
        print(f"error: no screenshot after {SCREENSHOT_TIMEOUT_S} s", file=sys.stderr)
        self.save(code=1)

    def save(self, code: int = 0) -> None:
        if self.saved:
            return
        self.saved = True
        if self.window.app is not None:
            for view in self.window.chat.views():
                view.flush()
        # Pictures are the same size whatever size the user last left the window at.
        self.window.resize(*DEFAULT_SIZE)
        QApplication.processEvents()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            print(f"error: could not write {self.path}", file=sys.stderr)
            code = 1
        else:
            print(f"saved {self.path}", file=sys.stderr)
        self.result["code"] = code
        self.window.close()
        QApplication.quit()
