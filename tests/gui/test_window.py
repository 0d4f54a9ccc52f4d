"""The window around the chat: conversations, settings, theme, geometry, plugins page.

These need no model: conversations are written through the store's own API, and the
window is made without loading a model (``load_model=False``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from windows import make_window

from archivist import hookimpl
from archivist.application import Application
from archivist.gui.conversation_list import ConversationList
from archivist.gui.preferences import Preferences
from archivist.store.conversations import Conversations


@pytest.fixture()
def plain_app(home: Path):
    application = Application(home)
    yield application
    application.close()


def seed(app) -> tuple[int, int]:
    store = Conversations(app.database)
    first = store.create_conversation("Trip to Lisbon")
    store.add_message(first, "user", "Where should we eat?")
    store.add_message(first, "assistant", "Try **pastéis** [1].\n\n```python\nprint('obrigado')\n```",
                      citations=[{"n": 1, "path": "/docs/guide.md", "page": None, "start": 0, "end": 10,
                                  "snippet": "Pastéis de nata are best warm.", "score": 1.0}])
    second = store.create_conversation("Tax forms")
    store.add_message(second, "user", "Which form for 2025?")
    return first, second


def test_conversations_list_select_rename_search_and_persist(plain_app, qtbot) -> None:
    first, second = seed(plain_app)
    win = make_window(plain_app, qtbot)
    sidebar = win.sidebar
    assert sidebar.ids() == [second, first]  # newest first

    sidebar.list.setCurrentRow(1)
    assert win.chat.conversation_id == first
    _user, answer = win.chat.views()
    assert answer.code_blocks()[0].code() == "print('obrigado')"
    assert "cite:1" in answer.prose_labels()[0].text()
    assert "guide.md" in answer.sources_label.text()
    answer.code_blocks()[0].copy_button.click()
    assert QApplication.clipboard().text() == "print('obrigado')"

    sidebar.rename(first, "  Lisbon   food ")
    assert Conversations(plain_app.database).get_conversation(first).title == "Lisbon food"
    assert sidebar.list.currentItem().text() == "Lisbon food"

    qtbot.keyClicks(sidebar.search, "form")
    qtbot.waitUntil(lambda: sidebar.ids() == [second])
    sidebar.search.clear()
    qtbot.waitUntil(lambda: len(sidebar.ids()) == 2)

    # A new window over the same home sees the same conversations.
    again = ConversationList(Conversations(plain_app.database))
    qtbot.addWidget(again)
    assert sorted(again.ids()) == sorted([first, second])


def test_stored_sources_show_as_cited_or_consulted_as_they_were_saved(plain_app, qtbot) -> None:
    store = Conversations(plain_app.database)
    source = {"n": 1, "path": "/docs/guide.md", "page": 2, "start": 0, "end": 10,
              "snippet": "Pastéis de nata are best warm.", "score": 1.0}
    conversation = store.create_conversation("Pastries")
    store.add_message(conversation, "user", "Which pastry?")
    store.add_message(conversation, "assistant", "Try pastéis.", citations=[{**source, "cited": False}])
    store.add_message(conversation, "user", "And where?")
    # Saved before Citation.cited existed: shown as a citation, as it was then.
    store.add_message(conversation, "assistant", "In Belém [1].", citations=[source])
    win = make_window(plain_app, qtbot)
    win.chat.show_conversation(conversation)
    consulted, cited = (v.sources_label.text() for v in win.chat.views() if v.role == "assistant")
    assert "Consulted" in consulted and "not cited in the answer" in consulted and "[1]" not in consulted
    assert "guide.md, p. 2" in consulted
    assert "<b>Sources</b>" in cited and "[1] guide.md, p. 2" in cited and "Consulted" not in cited


def test_delete_can_be_undone_and_is_final_after_the_timeout(plain_app, qtbot) -> None:
    first, second = seed(plain_app)
    win = make_window(plain_app, qtbot)
    sidebar, store = win.sidebar, Conversations(plain_app.database)
    sidebar.list.setCurrentRow(0)
    sidebar.delete_current()
    assert sidebar.ids() == [first]
    assert sidebar.undo_bar.isVisible()
    assert win.chat.conversation_id is None, "the chat leaves a deleted conversation"
    sidebar.undo_button.click()
    assert sorted(sidebar.ids()) == sorted([first, second])
    assert store.get_conversation(second) is not None

    sidebar.delete(second)
    sidebar._undo_timer.setInterval(10)
    sidebar._undo_timer.start()
    qtbot.waitUntil(lambda: not sidebar.undo_bar.isVisible())
    assert store.get_conversation(second) is None

    sidebar.delete(first)
    win.close()  # closing commits what is pending
    assert store.get_conversation(first) is None


def test_new_conversation_shortcut_and_navigation(plain_app, qtbot) -> None:
    seed(plain_app)
    win = make_window(plain_app, qtbot)
    win.sidebar.list.setCurrentRow(1)
    assert win.chat.views()
    win.new_conversation()
    assert win.chat.conversation_id is None and not win.chat.views()
    assert win.page_names() == ["Chat", "Library", "Models", "Plugins", "Settings"]
    keys = {s.key().toString() for s in win.shortcuts}
    assert {"Ctrl+N", "Ctrl+R", "Ctrl+E", "Ctrl+F", "Esc"} <= keys
    win.show_page("Settings")
    assert win.stack.currentWidget() is win.settings_page


def test_settings_are_saved_and_applied(plain_app, qtbot) -> None:
    win = make_window(plain_app, qtbot)
    page = win.settings_page
    page.temperature.setValue(0.7)
    page.sources.setValue(3)
    page.context_budget.setValue(1024)
    page.system_prompt.setPlainText("Answer like a pirate.")
    qtbot.waitUntil(lambda: win.prefs.system_prompt == "Answer like a pirate.")
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    dark = QApplication.instance().palette().color(QPalette.ColorRole.Window)
    assert dark.lightness() < 80
    page.theme.setCurrentIndex(page.theme.findData("light"))
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 200
    page.font_size.setValue(14)
    assert QApplication.instance().font().pointSize() == 14

    stored = Preferences.load(plain_app.settings(), {})
    assert (stored.temperature, stored.sources, stored.context_budget) == (0.7, 3, 1024)
    assert stored.system_prompt == "Answer like a pirate." and stored.theme == "light"
    assert plain_app.config["system_prompt"] == "Answer like a pirate."
    assert plain_app.config["context_budget"] == 1024
    assert win.prefs.options().temperature == 0.7
    assert str(plain_app.paths.home) in page.data_folder.text()
    page.font_size.setValue(0)
    page.theme.setCurrentIndex(page.theme.findData("system"))


def test_the_window_remembers_its_geometry(plain_app, qtbot) -> None:
    win = make_window(plain_app, qtbot)
    # Within the offscreen screen (restoreGeometry clamps to it), above the minimum size.
    size = (max(700, win.minimumSizeHint().width() + 10), 520)
    win.resize(*size)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == size)
    win.close()
    again = make_window(plain_app, qtbot)
    assert (again.width(), again.height()) == size


def test_plugins_page_lists_plugins_with_version_and_origin_and_toggles(plain_app, qtbot) -> None:
    win = make_window(plain_app, qtbot)
    page = win.plugins_page
    names = [page.table.item(r, 0).text() for r in range(page.table.rowCount())]
    assert "archivist.engine.backend" in names
    row = page.row_of("archivist.engine.backend")
    assert page.table.item(row, 2).text() == "core"
    assert page.table.item(row, 1).text() == plain_app.host.records["archivist.engine.backend"].version
    builtin = next((n for n in names if plain_app.host.records[n].origin == "built-in"), None)
    if builtin is not None:
        item = page.table.item(page.row_of(builtin), 3)
        item.setCheckState(Qt.CheckState.Unchecked)
        assert not plain_app.host.enabled(builtin)
        page.table.item(page.row_of(builtin), 3).setCheckState(Qt.CheckState.Checked)
        assert plain_app.host.enabled(builtin)


class NotesPanel:
    name = "notes"
    title = "Notes"

    def create_widget(self, parent):
        from PySide6.QtWidgets import QLabel

        return QLabel("Hello from a plugin", parent)


class BrokenPanel:
    name = "broken"
    title = "Broken"

    def create_widget(self, parent):
        raise RuntimeError("no widget today")


class PanelPlugin:
    def __init__(self, panel) -> None:
        self.panel = panel

    @hookimpl
    def register_panels(self, register):
        register(self.panel)


def test_plugin_panels_join_the_navigation_and_a_broken_one_is_reported(plain_app, qtbot) -> None:
    plain_app.host.add("notes", PanelPlugin(NotesPanel()))
    plain_app.host.add("broken", PanelPlugin(BrokenPanel()))
    win = make_window(plain_app, qtbot)
    assert win.page_names() == ["Chat", "Library", "Models", "Plugins", "Notes", "Settings"]
    win.show_page("Notes")
    assert win.stack.currentWidget().text() == "Hello from a plugin"
    assert win.plugin_banner.isVisible() and "no widget today" in win.plugin_banner_text.text()
    assert "no widget today" in win.plugins_page.problem_of("broken")
    assert not plain_app.host.enabled("broken") and plain_app.host.enabled("notes")


def test_switching_a_plugin_off_on_the_page_is_kept_for_the_next_start(plain_app, qtbot) -> None:
    from archivist.config import read_disabled_plugins

    plain_app.host.add("tp_notes", PanelPlugin(NotesPanel()))
    win = make_window(plain_app, qtbot)
    page = win.plugins_page
    page.refresh()
    page.table.item(page.row_of("tp_notes"), 3).setCheckState(Qt.CheckState.Unchecked)
    assert not plain_app.host.enabled("tp_notes")
    assert read_disabled_plugins(plain_app.paths) == {"tp_notes"}
    page.table.item(page.row_of("tp_notes"), 3).setCheckState(Qt.CheckState.Checked)
    assert read_disabled_plugins(plain_app.paths) == set()


def test_the_command_line_answers_with_what_the_settings_page_saved(plain_app, qtbot, home) -> None:
    win = make_window(plain_app, qtbot)
    page = win.settings_page
    page.sources.setValue(7)
    page.context_budget.setValue(1536)
    page.system_prompt.setPlainText("Answer in French.")
    qtbot.waitUntil(lambda: win.prefs.system_prompt == "Answer in French.")
    win.close()
    # A fresh Application, as `archivist ask` makes one: no window, no Preferences.
    cli_app = Application(home)
    try:
        assert cli_app.preference("system_prompt", "") == "Answer in French."
        assert cli_app.preference("sources", 3) == 7
        assert cli_app.preference("context_budget", 4096) == 1536
    finally:
        cli_app.close()
