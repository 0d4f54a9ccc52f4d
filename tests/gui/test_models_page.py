"""The Models page over the real engine: hardware, recommendation, first run, switching,
downloading from the local hub (with cancel and resume).

The hub is the engine tests' local stand-in for Hugging Face (``tests/engine/local_hub.py``)
serving a Phi-3-shaped repository; the download itself is the real ``install_variant``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from archivist.application import Application
from archivist.gui.window import MainWindow
from archivist.model_service import MODEL_SETTING

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
CPU_VARIANT = "phi-3-mini-4k-instruct-cpu-int4"


def refreshed(win: MainWindow, qtbot) -> None:
    with qtbot.waitSignal(win.models_page.refreshed, timeout=30_000):
        win.models_page.refresh()


def test_the_page_shows_this_computer_and_the_recommendation_with_its_reason(app, qtbot) -> None:
    from archivist.engine.catalog import load_catalog
    from archivist.engine.hardware import probe
    from archivist.engine.recommendation import recommend

    win = MainWindow(app, load_model=False)
    qtbot.addWidget(win)
    win.show()
    win.show_page("Models")
    refreshed(win, qtbot)
    page = win.models_page
    hw = probe()
    rec = recommend(hw, load_catalog())
    assert f"{hw.cores} cores" in page.machine.text()
    assert hw.os in page.machine.text()
    if rec.choice is not None:
        assert rec.choice.variant_id in page.recommendation.text()
        recommended = [page.catalog_table.item(r, 0).data(Qt.ItemDataRole.UserRole)
                       for r in range(page.catalog_table.rowCount())
                       if page.catalog_table.item(r, 3).text() == "recommended"]
        assert recommended == [rec.choice.variant_id]
    assert page.catalog_table.rowCount() == len(load_catalog().variants())
    assert not page.first_run and page.welcome.isHidden()


def test_first_run_without_a_model_opens_on_the_two_ways_to_start(home: Path, qtbot) -> None:
    application = Application(home)
    try:
        win = MainWindow(application)
        qtbot.addWidget(win)
        with qtbot.waitSignal(win.model_ready, timeout=60_000) as blocker:
            win.show()
        assert blocker.args[0] is None
        page = win.models_page
        qtbot.waitUntil(lambda: page.first_run and page.welcome.isVisible(), timeout=30_000)
        assert win.stack.currentWidget() is page
        text = page.welcome_text.text()
        assert "built-in" in text and "often wrong" in text
        assert page.builtin_button.isEnabled()
        assert "Models page" in win.chat.banner.text()
        win.close()
    finally:
        application.close()


@pytest.fixture()
def second_model(home: Path, default_model_dir: Path) -> str:
    """Another installed model: the default model's files under a different id."""
    folder = home / "models" / "other-model"
    folder.mkdir(parents=True)
    for item in default_model_dir.iterdir():
        if item.name != "archivist.json":
            (folder / item.name).symlink_to(item)
    meta = json.loads((default_model_dir / "archivist.json").read_text())
    meta.update(id="other-model", name="Other model")
    (folder / "archivist.json").write_text(json.dumps(meta))
    return "other-model"


def test_using_another_model_switches_the_window_and_the_cli_setting(window, qtbot, second_model: str) -> None:
    page = window.models_page
    window.show_page("Models")
    refreshed(window, qtbot)
    rows = {page.installed_table.item(r, 0).data(Qt.ItemDataRole.UserRole): r
            for r in range(page.installed_table.rowCount())}
    assert second_model in rows
    page.installed_table.selectRow(rows[second_model])
    assert page.use_button.isEnabled()
    # The window's own first load may still be finishing: wait for the switched model.
    with qtbot.waitSignal(window.model_ready, timeout=120_000,
                          check_params_cb=lambda m: m is not None and m.info.id == second_model) as blocker:
        page.use_button.click()
    model = blocker.args[0]
    assert model is not None and model.info.id == second_model
    assert window.app.settings().get(MODEL_SETTING) == second_model  # what `archivist ask` reads
    assert "Other model" in window.model_status.text()
    qtbot.waitUntil(lambda: "Other model" in page.current.text() and "loaded" in page.current.text(),
                    timeout=30_000)


def test_the_page_and_the_command_line_act_through_one_service(app, qtbot, second_model: str,
                                                               default_model_dir: Path) -> None:
    """A choice or removal on the page is what ``archivist models list`` shows, and one
    made on the command line is what the page shows after its next refresh."""
    from types import SimpleNamespace

    import click
    from click.testing import CliRunner

    from archivist.gui.models_page import ModelsPage
    from archivist.model_commands import add_model_commands

    group = click.Group("models")
    add_model_commands(group)

    def cli(*args: str) -> str:
        other = Application(app.paths.home, safe_mode=True)  # as another process would
        try:
            result = CliRunner().invoke(group, list(args), obj=SimpleNamespace(app=other), catch_exceptions=False)
        finally:
            other.close()
        assert result.exit_code == 0, result.output
        return result.stdout

    def in_use_column(page: ModelsPage) -> dict[str, str]:
        return {page.installed_table.item(r, 0).data(Qt.ItemDataRole.UserRole): page.installed_table.item(r, 3).text()
                for r in range(page.installed_table.rowCount())}

    page = ModelsPage(app)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.refresh()
    assert in_use_column(page) == {second_model: ""}  # the app fixture chose the default model's folder

    with qtbot.waitSignal(page.model_chosen, timeout=30_000):
        page.use_model(second_model)
    installed = json.loads(cli("list", "--json"))["installed"]
    assert [(m["id"], m["chosen"]) for m in installed] == [(second_model, True)]
    qtbot.waitUntil(lambda: in_use_column(page) == {second_model: "in use"}, timeout=30_000)

    cli("use", str(default_model_dir))
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.refresh()
    assert page.data is not None and page.data.chosen == str(default_model_dir)
    assert in_use_column(page) == {second_model: ""}

    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.remove_model(second_model)
    assert json.loads(cli("list", "--json"))["installed"] == []
    assert page.installed_table.rowCount() == 0 and page.error.text() == ""


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The engine tests' local hub (loaded from its file: their conftest is not ours)."""
    sys.path.insert(0, str(ENGINE_TESTS))
    try:
        spec = importlib.util.spec_from_file_location("engine_test_fixtures", ENGINE_TESTS / "conftest.py")
        engine = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(engine)
    finally:
        sys.path.remove(str(ENGINE_TESTS))
    server = engine.HubServer({engine.PHI3_REPO: engine.FakeRepo(files=engine.phi3_like_files())}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.stop()


def test_a_download_shows_progress_can_be_cancelled_and_resumes(app, qtbot, hub) -> None:
    win = MainWindow(app, load_model=False)
    qtbot.addWidget(win)
    win.show()
    page = win.models_page
    win.show_page("Models")
    refreshed(win, qtbot)
    seen: list[int] = []
    page.download_progress.connect(lambda p: seen.append(p.done_bytes), Qt.ConnectionType.DirectConnection)

    # Cancel as soon as the first file starts (on the download's own thread, so it is
    # not racing the transfer): the page says it stopped and offers to resume.
    page.download_progress.connect(lambda p: page.cancel_download() if p.filename.endswith(".data") else None,
                                   Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(page.download_finished, timeout=60_000) as blocker:
        page.download(CPU_VARIANT)
    assert blocker.args[0] == CPU_VARIANT and "stopped" in blocker.args[1]
    assert "Resume download" in page.error.text()
    qtbot.waitUntil(lambda: page.data is not None and page.data.unfinished_download(CPU_VARIANT) is not None,
                    timeout=30_000)
    row = next(r for r in range(page.catalog_table.rowCount())
               if page.catalog_table.item(r, 0).data(Qt.ItemDataRole.UserRole) == CPU_VARIANT)
    assert page.catalog_table.item(row, 4).text().startswith("stopped at")
    page.catalog_table.selectRow(row)
    assert page.download_button.text() == "Resume download"

    page.download_progress.disconnect()
    resumed: list[int] = []
    page.download_progress.connect(lambda p: resumed.append(p.done_bytes), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(page.download_finished, timeout=120_000) as blocker:
        page.download_button.click()
    assert blocker.args == [CPU_VARIANT, ""]
    assert seen and resumed and resumed[0] > 0  # the verified files were not fetched again
    assert (app.paths.models / CPU_VARIANT / "genai_config.json").is_file()
    qtbot.waitUntil(lambda: page.catalog_table.item(row, 4).text() == "installed", timeout=30_000)
    installed = [page.installed_table.item(r, 0).data(Qt.ItemDataRole.UserRole)
                 for r in range(page.installed_table.rowCount())]
    assert CPU_VARIANT in installed


def test_importing_a_gguf_file_installs_it_and_switches_to_it(app, qtbot) -> None:
    from archivist_models.default import fetch_default_gguf

    gguf = fetch_default_gguf(Path(__file__).resolve().parents[2] / ".cache" / "wheels")  # cached by the fixture
    win = MainWindow(app, load_model=False)
    qtbot.addWidget(win)
    win.show()
    page = win.models_page
    stages: list[str] = []
    with qtbot.waitSignal(win.model_ready, timeout=600_000) as blocker:
        task = page.import_gguf(gguf)
        assert task is not None
        task.progress.connect(lambda value: stages.append(value.stage))
        assert not page.import_button.isEnabled()  # one job at a time
    model_id = "smollm2-135m-instruct.q4-1"
    assert blocker.args[0] is not None and blocker.args[0].info.id == model_id, page.error.text()
    assert stages  # the conversion reported its stages on the way
    assert (app.paths.models / model_id / "genai_config.json").is_file()
    assert app.settings().get(MODEL_SETTING) == model_id
