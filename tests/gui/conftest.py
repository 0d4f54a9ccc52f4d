"""Fixtures for the desktop app's tests: real widgets offscreen, the real core, and the
real model (``window``) or a scripted one whose answers the test chose (``scripted_window``).

``QT_QPA_PLATFORM`` is set before pytest-qt creates the QApplication, so the tests run
headless on CI and on a developer's desktop alike.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop app needs PySide6 (pip install PySide6-Essentials)")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

def open_window(app, qtbot):
    """The main window over ``app``, shown, once its model has loaded."""
    from archivist.gui.window import MainWindow

    win = MainWindow(app)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.model_ready, timeout=120_000) as blocker:
        win.show()
    assert blocker.args[0] is not None, win.chat.banner.text()
    return win


@pytest.fixture()
def window(app, qtbot):
    """The main window over the ``app`` fixture (the real model), shown, with its model loaded."""
    win = open_window(app, qtbot)
    yield win
    win.close()


@pytest.fixture()
def scripted_window(scripted_app, qtbot):
    """The main window over ``scripted_app``: answers are what the test queued on ``scripted``.

    For what the window does with an answer (markers, citations, regenerate), which must
    look the same on every machine; the real model's words differ by CPU.
    """
    win = open_window(scripted_app, qtbot)
    yield win
    win.close()


@pytest.fixture(scope="session")
def embedder_path():
    """The real MiniLM search encoder, built once from its wheel (as the retrieval tests do)."""
    from archivist_models.embedder import RECIPE_VERSION, build_embedder

    cache = Path(__file__).resolve().parents[2] / ".cache"  # where tests/conftest.py keeps models
    return build_embedder(cache / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", cache / "wheels")


@pytest.fixture()
def with_encoder(home, embedder_path):
    """``home`` with the search encoder in place, as `archivist models build-default` leaves it."""
    from archivist_models.embedder import EMBEDDER_DIR

    target = home / "models" / EMBEDDER_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(embedder_path, target_is_directory=True)
    return home
