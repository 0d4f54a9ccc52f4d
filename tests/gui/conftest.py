"""Fixtures for the desktop app's tests: real widgets offscreen, the real core and model.

``QT_QPA_PLATFORM`` is set before pytest-qt creates the QApplication, so the tests run
headless on CI and on a developer's desktop alike.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop app needs PySide6 (pip install PySide6-Essentials)")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

@pytest.fixture()
def window(app, qtbot):
    """The main window over the ``app`` fixture, shown, with its model loaded."""
    from archivist.gui.window import MainWindow

    win = MainWindow(app)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.model_ready, timeout=120_000) as blocker:
        win.show()
    assert blocker.args[0] is not None, win.chat.banner.text()
    yield win
    win.close()

