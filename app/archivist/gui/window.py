"""The main window: navigation on the left, one page at a time on the right.

Pages are listed in ``MainWindow.pages`` in navigation order: Chat, Library (the folders
answers come from), Models, Plugins, panels plugins contribute, Settings. The window owns
what spans pages: loading the model in the background (again when the Models page
switches it), the plugin-error banner, shortcuts, the theme, stopping the indexing
process and its folder watcher on close, and remembering its geometry (in the home
folder's settings store).

The window can be shown before the Application exists (``MainWindow(None)``, then
:meth:`MainWindow.attach`): opening the database and importing the plugins takes longer
than the first paint should wait, so ``run_gui`` does that on a worker thread and this
module imports nothing of the core at import time.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from archivist.gui.theme import apply_theme
from archivist.gui.workers import Task

log = logging.getLogger(__name__)

GEOMETRY_KEY = "gui.geometry"
DEFAULT_SIZE = (1100, 740)


class MainWindow(QMainWindow):
    """Archivist's window over one :class:`~archivist.application.Application`."""

    plugin_failed = Signal(object)  # PluginError; emitted from any thread, handled on the UI thread
    model_ready = Signal(object)  # the LoadedModel, or None when loading failed

    attached = Signal()

    def __init__(self, app: Any = None, *, load_model: bool = True) -> None:
        super().__init__()
        self.app: Any = None
        self.prefs: Any = None
        self.loaded_model: Any = None
        self._tasks: set[Task] = set()
        self.pages: list[tuple[str, QWidget]] = []
        self.shortcuts: list[QShortcut] = []
        self.setWindowTitle("Archivist")
        self.apply_theme()

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.plugin_banner = QWidget()
        self.plugin_banner.setObjectName("pluginBanner")
        banner_row = QHBoxLayout(self.plugin_banner)
        banner_row.setContentsMargins(12, 6, 12, 6)
        self.plugin_banner_text = QLabel()
        self.plugin_banner_text.setObjectName("banner")
        self.plugin_banner_text.setWordWrap(True)
        details = QPushButton("Details")
        details.clicked.connect(lambda: self.show_page("Plugins"))
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(lambda: self.plugin_banner.setVisible(False))
        banner_row.addWidget(self.plugin_banner_text, 1)
        banner_row.addWidget(details)
        banner_row.addWidget(dismiss)
        self.plugin_banner.setVisible(False)
        outer.addWidget(self.plugin_banner)

        body = QHBoxLayout()
        body.setSpacing(0)
        outer.addLayout(body, 1)
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(120)
        body.addWidget(self.navigation)
        self.stack = QStackedWidget()
        body.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.starting = QLabel("Starting…")
        self.starting.setObjectName("hint")
        self.starting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.starting)
        self.model_status = QLabel("")
        self.statusBar().addPermanentWidget(self.model_status)
        self.resize(*DEFAULT_SIZE)
        if app is not None:
            self.attach(app, load_model=load_model)

    def attach(self, app: Any, *, load_model: bool = True) -> None:
        """Build the pages over ``app`` (once); restores geometry, starts loading the model."""
        from archivist.gui.chat_page import ChatPage
        from archivist.gui.conversation_list import ConversationList
        from archivist.gui.library_page import LibraryPage
        from archivist.gui.models_page import ModelsPage
        from archivist.gui.plugins_page import PluginsPage
        from archivist.gui.preferences import Preferences
        from archivist.gui.settings_page import SettingsPage

        self.app = app
        # The model answers from a child process: onnxruntime-genai holds the GIL while
        # it generates, which would otherwise freeze this window for whole seconds.
        app.isolate_model = True
        self.settings = app.settings()
        self.prefs = Preferences.load(self.settings, app.config)
        self.prefs.apply(app.config)
        self.setWindowTitle("Archivist" + (" — safe mode" if app.safe_mode else ""))
        self.apply_theme()
        self.stack.removeWidget(self.starting)
        self.starting.deleteLater()

        self.sidebar = ConversationList(self._conversations())
        self.chat = ChatPage(app, self.prefs)
        chat_split = QSplitter(Qt.Orientation.Horizontal)
        chat_split.addWidget(self.sidebar)
        chat_split.addWidget(self.chat)
        chat_split.setStretchFactor(1, 1)
        chat_split.setSizes([250, 850])
        self.plugins_page = PluginsPage(app.host, remember=app.set_plugin_enabled)
        self.settings_page = SettingsPage(self.prefs, self.settings, app.paths.home)
        self.library = LibraryPage(app)
        self.models_page = ModelsPage(app)

        # Navigation order; pages that plugins contribute come after the built-in ones,
        # before Settings.
        self.pages = [("Chat", chat_split), ("Library", self.library), ("Models", self.models_page),
                      ("Plugins", self.plugins_page)]
        self.pages += self._plugin_panels()
        self.pages.append(("Settings", self.settings_page))
        for name, page in self.pages:
            self.navigation.addItem(name)
            self.stack.addWidget(page)
        self.navigation.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.navigation.setCurrentRow(0)

        self.sidebar.selected.connect(self.chat.show_conversation)
        self.library.ask_about_file.connect(self.ask_about_file)
        self.chat.conversation_changed.connect(self._conversation_saved)
        self.settings_page.changed.connect(self._preferences_changed)
        self.models_page.model_chosen.connect(self._model_chosen)
        self.chat.turn_finished.connect(lambda _answer: self._reload_if_pending())
        self.plugin_failed.connect(self._show_plugin_error)
        self._listener = self.plugin_failed.emit
        app.host.listeners.append(self._listener)
        for error in app.host.errors:
            self._show_plugin_error(error)
        hints = QGuiApplication.styleHints()
        hints.colorSchemeChanged.connect(lambda _scheme: self.apply_theme())

        self._install_shortcuts()
        self._restore_geometry()
        self.attached.emit()
        self._reload_pending = False
        if load_model:
            QTimer.singleShot(0, self.load_model)
        # Asked before the warm-up below starts collecting contributions on its thread
        # (collecting takes the host's lock): a cheap read of the library's sources.
        if self.library.available and app.library.has_sources():
            # Sources were added before: start the indexing process so they are watched
            # for changes while the app runs (it is a child process; nothing waits).
            QTimer.singleShot(1500, self.library.start)
        self._warm_plugins()

    def _warm_plugins(self) -> Task:
        """Collect what plugins contribute to a turn now, off the UI thread.

        Registration imports the plugins' modules and starts their models (the safety
        filter's encoder); done lazily inside the first turn, it held the GIL long
        enough to freeze the window 60-90 ms while the first answer streamed.
        """
        host = self.app.host
        task = Task(lambda: (host.safety_filters(), host.retrievers(), host.loaders()),
                    name="archivist-plugin-warm-up")
        task.succeeded.connect(lambda _found: self.chat.refresh_collections())  # ("Answer from")
        self._tasks.add(task)
        task.ended.connect(lambda: self._tasks.discard(task))
        return task.start()

    def show_startup_error(self, message: str) -> None:
        self.starting.setText(f"Archivist could not start: {message}")

    def _plugin_panels(self) -> list[tuple[str, QWidget]]:
        """Pages from ``register_panels``; a panel that fails is reported and left out."""
        from archivist.errors import PluginFailure

        panels: list[tuple[str, QWidget]] = []
        for contribution in self.app.host.contributions("register_panels"):
            try:
                widget = self.app.host.run(contribution, "create_widget", self.stack)
                if not isinstance(widget, QWidget):
                    raise TypeError(f"create_widget returned {type(widget).__name__}, not a QWidget")
            except PluginFailure:
                continue  # the host disabled the plugin and told the listeners (the banner)
            except TypeError as exc:
                self.app.host.disable(contribution.plugin, "Panel.create_widget", exc)
                continue
            title = str(getattr(contribution.obj, "title", "") or contribution.plugin)
            panels.append((title, widget))
        return panels

    def _conversations(self) -> Any:
        from archivist.store.conversations import Conversations

        return Conversations(self.app.database)

    # -- pages --------------------------------------------------------------------

    def page_names(self) -> list[str]:
        return [name for name, _ in self.pages]

    def show_page(self, name: str) -> None:
        self.navigation.setCurrentRow(self.page_names().index(name))

    def _conversation_saved(self, conversation_id: int) -> None:
        self.sidebar.refresh(select=conversation_id)

    def new_conversation(self) -> None:
        self.show_page("Chat")
        self.sidebar.new_conversation()

    def ask_about_file(self, path: str) -> None:
        """A new conversation with ``path`` pinned: its questions are answered from the whole file."""
        self.new_conversation()
        self.chat.pin_files([path])

    # -- model --------------------------------------------------------------------

    def load_model(self) -> Task:
        """Load the chosen model off the UI thread; the status bar says how it went."""
        self.model_status.setText("Loading model…")
        task = Task(self.app.load_model, name="archivist-model-load")
        self._tasks.add(task)
        task.succeeded.connect(self._model_loaded)
        task.failed.connect(self._model_failed)
        task.ended.connect(lambda: self._tasks.discard(task))
        return task.start()

    def _model_loaded(self, model: Any) -> None:
        self.loaded_model = model
        self.model_status.setText(f"{model.info.name} · {model.provider}")
        self.chat.show_banner(self.app.load_notice)
        self.models_page.refresh()
        self.model_ready.emit(model)

    def _model_failed(self, message: str) -> None:
        self.model_status.setText("No model loaded")
        self.models_page.refresh()
        if self.models_page.nothing_installed():
            # Nothing installed yet: the Models page explains the two ways to start.
            self.chat.show_banner("No model is installed yet: choose one on the Models page.")
            self.show_page("Models")
        else:
            self.chat.show_banner(f"The model could not be loaded: {message}")
        self.model_ready.emit(None)

    def _model_chosen(self) -> None:
        """The Models page chose another model: load it now, or after the running answer."""
        if self.chat.busy:
            self._reload_pending = True
            self.model_status.setText("Switching model after this answer…")
            return
        self.load_model()

    def _reload_if_pending(self) -> None:
        if self._reload_pending:
            self._reload_pending = False
            QTimer.singleShot(0, self.load_model)

    # -- plugins ------------------------------------------------------------------

    def _show_plugin_error(self, error: Any) -> None:
        # A safety filter that fails stays on (what it could not screen is withheld).
        state = "it stays on" if self.app.host.enabled(error.plugin) else "it is off for this session"
        self.plugin_banner_text.setText(
            f"Plugin “{error.plugin}” failed in {error.where} ({state}): {error.message}"
        )
        self.plugin_banner.setVisible(True)
        self.plugins_page.refresh()

    # -- look ---------------------------------------------------------------------

    def apply_theme(self) -> None:
        qapp = QApplication.instance()
        if isinstance(qapp, QApplication):  # the window's own (not None, not a bare QCoreApplication)
            prefs = self.prefs
            apply_theme(qapp, prefs.theme if prefs else "system", prefs.font_size if prefs else 0)

    def _preferences_changed(self, prefs: Any) -> None:
        prefs.apply(self.app.config)
        self.apply_theme()

    # -- shortcuts ----------------------------------------------------------------

    def _install_shortcuts(self) -> None:
        bindings: list[tuple[QKeySequence.StandardKey | str, Callable[[], object]]] = [
            (QKeySequence.StandardKey.New, self.new_conversation),
            ("Ctrl+F", self._search),
            ("Ctrl+R", self.chat.regenerate),
            ("Ctrl+E", self.chat.edit_last),
            ("Ctrl+Shift+C", self.chat.copy_last_answer),
            ("Ctrl+Return", self.chat.send),
            ("F2", self.sidebar.rename_current),
            ("Ctrl+,", lambda: self.show_page("Settings")),
            (QKeySequence.StandardKey.Quit, self.close),
        ]
        for i, (name, _page) in enumerate(self.pages, start=1):
            bindings.append((f"Ctrl+{i}", partial(self.show_page, name)))
        for keys, slot in bindings:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)
        stop = QShortcut(QKeySequence("Escape"), self)
        stop.setContext(Qt.ShortcutContext.WindowShortcut)
        stop.activated.connect(self.chat.escape)
        self.shortcuts.append(stop)

    def _search(self) -> None:
        self.show_page("Chat")
        self.sidebar.focus_search()

    # -- geometry and closing -----------------------------------------------------

    def _restore_geometry(self) -> None:
        saved = self.settings.get(GEOMETRY_KEY, None)
        if saved:
            try:
                self.restoreGeometry(QByteArray(base64.b64decode(saved)))
            except (ValueError, TypeError):
                log.warning("ignoring a damaged saved window geometry")

    def save_geometry(self) -> None:
        data = bytes(self.saveGeometry().data())
        self.settings.set(GEOMETRY_KEY, base64.b64encode(data).decode("ascii"))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self.app is None:
            super().closeEvent(event)
            return
        self.chat.shutdown()
        self.library.shutdown()  # stops indexing and the folder watcher
        self.models_page.shutdown()
        self.sidebar.commit_deletions()
        try:
            self.save_geometry()
        except Exception:  # closing must not fail over a window size
            log.exception("could not save the window geometry")
        try:
            self.app.host.listeners.remove(self._listener)
        except ValueError:
            pass
        super().closeEvent(event)

