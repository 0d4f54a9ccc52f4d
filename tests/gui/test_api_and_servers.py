"""The window's parts of issue #14: the Settings page starts and stops the API, showing its
address and the key once; the Models page adds a model server (another Archivist, running
for real on a loopback port), says what leaves the computer, and uses its model."""

from __future__ import annotations

import sys
from pathlib import Path

import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from serving import Served

from archivist.api.settings import ServeSettings
from archivist.gui.window import MainWindow


def test_settings_start_and_stop_the_api_and_show_the_key_once(scripted_app, qtbot) -> None:
    win = MainWindow(scripted_app, load_model=False)
    qtbot.addWidget(win)
    win.show()
    box = win.settings_page.api_server
    box.port.setValue(0)
    box.new_key.setChecked(True)  # a key is made and shown, even on loopback
    with qtbot.waitSignal(box.toggle().succeeded, timeout=30_000):
        pass
    assert box.running and "http://127.0.0.1:" in box.status.text()
    url = box.server.url
    key = box.server.key
    assert key and key in box.status.text() and not box.copy_button.isHidden()
    ids = [m.id for m in openai.OpenAI(base_url=url, api_key="any", max_retries=0).models.list()]
    assert "archivist" in ids
    with qtbot.waitSignal(box.toggle().succeeded, timeout=30_000):
        pass
    assert not box.running and key not in box.status.text() and box.copy_button.isHidden()
    win.close()


def test_the_models_page_adds_a_server_says_what_leaves_and_uses_its_model(here_app, scripted_app, scripted,
                                                                          qtbot) -> None:
    served = Served(scripted_app, ServeSettings(port=0))
    try:
        win = MainWindow(here_app, load_model=False)
        qtbot.addWidget(win)
        win.show()
        box = win.models_page.servers
        assert "Only the packed prompt" in box.note.text()
        with qtbot.waitSignal(box.add("big", served.url, "archivist:nodocs").succeeded, timeout=30_000):
            pass
        qtbot.waitUntil(lambda: box.table.rowCount() == 1, timeout=10_000)
        assert box.table.item(0, 0).text() == "big" and box.table.item(0, 1).text() == "archivist:nodocs"
        box.table.selectRow(0)
        with qtbot.waitSignal(box.model_chosen, timeout=30_000):
            box.use("big")
        assert here_app.models.chosen() == "big"
        # A server that is not there: the page says why.
        with qtbot.waitSignal(box.add("gone", "http://127.0.0.1:9/v1").failed, timeout=30_000):
            pass
        assert "cannot reach the model server gone" in win.models_page.error.text()
        win.close()
    finally:
        served.stop()


@pytest.fixture()
def here_app(tmp_path: Path):
    from archivist.application import Application

    application = Application(tmp_path / "here")
    yield application
    application.close()
