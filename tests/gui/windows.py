"""Opening the main window in a test: shown, without loading a model, on a chosen page."""

from __future__ import annotations

from typing import Any

from archivist.gui.window import MainWindow


def make_window(app: Any, qtbot: Any, page: str | None = None) -> MainWindow:
    win = MainWindow(app, load_model=False)
    qtbot.addWidget(win)
    win.show()
    if page is not None:
        win.show_page(page)
    return win
