"""``archivist gui --screenshot FILE [--demo]``, headless, in a process of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from archivist.application import Application
from archivist.model_service import MODEL_SETTING

RUN = "import sys; from pathlib import Path; from archivist.gui import run_gui; " \
      "sys.exit(run_gui(Path(sys.argv[1]), screenshot=Path(sys.argv[2]), demo=sys.argv[3] == 'demo'))"


def screenshot(home: Path, png: Path, demo: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", RUN, str(home), str(png), "demo" if demo else "plain"],
                          capture_output=True, text=True, timeout=600, env=env)


def test_screenshot_saves_the_window_and_exits(home: Path, tmp_path: Path) -> None:
    png = tmp_path / "window.png"
    result = screenshot(home, png, demo=False)
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500


def test_demo_screenshot_indexes_docs_and_answers_with_sources_in_a_throwaway_home(
        with_encoder: Path, tmp_path: Path, default_model_dir: Path) -> None:
    home = with_encoder
    chosen = Application(home)
    chosen.settings().set(MODEL_SETTING, str(default_model_dir))
    chosen.close()
    png = tmp_path / "demo.png"
    result = screenshot(home, png, demo=True)
    assert result.returncode == 0, result.stderr
    assert not QImage(str(png)).isNull()
    # The Library indexed docs/, and the answer came back with sources from those files
    # (whether the 135M model writes [n] markers is its own business: not asserted).
    indexed = re.search(r"indexed (\d+) files of docs/", result.stderr)
    assert indexed and int(indexed.group(1)) >= 5, result.stderr
    sources = re.search(r"answered with (\d+) sources \((\d+) cited\)", result.stderr)
    assert sources and int(sources.group(1)) >= 1, result.stderr
    # The demo's conversation went to a temporary home, not the user's.
    from archivist.store.conversations import Conversations

    again = Application(home)
    try:
        assert Conversations(again.database).list_conversations() == []
    finally:
        again.close()


def test_a_home_that_cannot_be_opened_is_one_line_and_a_failing_exit(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file where the data folder should be")
    result = screenshot(not_a_folder, tmp_path / "never.png", demo=False)
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "never.png").exists()
