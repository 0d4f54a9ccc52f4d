"""The chat page against the real Assistant, model and SQLite store, offscreen."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QToolTip

from archivist.store.conversations import Conversations
from archivist.types import Action, Stage, Verdict
from archivist import hookimpl

from sample_plugins import FESTIVAL, RetrieverPlugin, StaticRetriever

TURN_TIMEOUT_MS = 120_000


def ask(qtbot, window, question: str):
    """Type a question, press Enter, wait for the turn; return (answer, text pieces)."""
    chat = window.chat
    pieces: list[str] = []
    chat.composer.setPlainText(question)
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as finished:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return)
        assert chat.worker is not None, "Enter must start a turn"
        chat.worker.text.connect(pieces.append)
    qtbot.waitUntil(lambda: not chat.busy)
    return finished.args[0], pieces


class UrlCatcher(QObject):
    """Stands in for the desktop's opener: records what QDesktopServices was asked to open."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_a_question_streams_an_answer_with_citations_that_reveal_and_open(app, window, qtbot) -> None:
    app.host.add("static", RetrieverPlugin(StaticRetriever([FESTIVAL])))
    window.prefs.max_new_tokens = 40
    answer, pieces = ask(qtbot, window, "When does the Zorblat festival take place?")

    assert answer is not None and answer.text
    assert "".join(pieces).strip() == answer.text
    user, reply = window.chat.views()
    assert user.text() == "When does the Zorblat festival take place?"
    assert reply.text().strip() == answer.text
    assert answer.citations and answer.citations[0].path == FESTIVAL.path

    # The citations are listed under the answer, and each [n] is a link.
    assert reply.sources_label.isVisible()
    assert "festivals.pdf, p. 3" in reply.sources_label.text()
    assert "cite:1" in reply.sources_label.text()

    # Hovering a citation reveals the passage.
    reply.on_link_hovered("cite:1")
    assert "Zorblat festival takes place every June" in QToolTip.text()
    reply.on_link_hovered("")

    # Clicking opens the file at the cited page.
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        reply.on_link_activated("cite:1")
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in catcher.urls] == ["/docs/festivals.pdf"]
    assert catcher.urls[0].fragment() == "page=3"

    # The status line names the model; the turn is in the sidebar and in the store.
    assert answer.model in reply.stats.text()
    assert window.sidebar.ids() == [answer.conversation_id]
    stored = Conversations(app.database).messages(answer.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]

    # Copy puts the answer on the clipboard.
    reply.copy_button.click()
    assert QGuiApplication.clipboard().text() == reply.text()


def test_stop_cancels_the_generation_and_keeps_what_was_written(app, window, qtbot) -> None:
    chat = window.chat
    chat.use_documents.setChecked(False)
    window.prefs.max_new_tokens = 300
    chat.composer.setPlainText("Write a very long story about a dragon who learns to read.")
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as finished:
        chat.send_button.click()
        assert chat.stop_button.isVisible() and not chat.send_button.isVisible()
        # Text shows while the answer is still being written (streaming), then Stop.
        qtbot.waitUntil(lambda: bool(chat.views()[-1].text()), timeout=TURN_TIMEOUT_MS)
        assert chat.busy
        chat.stop_button.click()
    answer = finished.args[0]
    assert answer.stats.finish_reason == "cancelled", (answer.text, answer.verdicts, answer.stats)
    assert answer.stats.completion_tokens < 300
    qtbot.waitUntil(lambda: not chat.busy)
    assert chat.send_button.isVisible() and not chat.stop_button.isVisible()
    assert "stopped" in chat.views()[-1].stats.text()
    # The partial answer is kept, and the next question works.
    stored = Conversations(app.database).messages(answer.conversation_id)
    assert stored[-1].role == "assistant" and stored[-1].text == answer.text
    window.prefs.max_new_tokens = 16
    again, _ = ask(qtbot, window, "Say hello.")
    assert again is not None and again.conversation_id == answer.conversation_id


class ExplodingRetriever:
    name = "exploding"

    def search(self, query: str, k: int = 5):
        raise OSError("index file vanished")


def test_a_plugin_that_raises_shows_its_error_and_the_app_keeps_working(app, window, qtbot) -> None:
    app.host.add("exploding", RetrieverPlugin(ExplodingRetriever()))
    window.prefs.max_new_tokens = 16
    answer, _ = ask(qtbot, window, "Say hello.")
    assert answer is not None and answer.text, "the turn goes on without the plugin"

    # The window says which plugin failed, and the Plugins page shows the error.
    assert window.plugin_banner.isVisible()
    assert "exploding" in window.plugin_banner_text.text()
    assert "index file vanished" in window.plugin_banner_text.text()
    page = window.plugins_page
    assert "index file vanished" in page.problem_of("exploding")
    row = page.row_of("exploding")
    assert page.table.item(row, 3).checkState() == Qt.CheckState.Unchecked

    # The Details button leads there; the app answers the next question.
    window.show_page("Plugins")
    assert window.stack.currentWidget() is page
    window.show_page("Chat")
    second, _ = ask(qtbot, window, "Say goodbye.")
    assert second is not None and second.text


class RedactNames:
    name = "redact-names"

    def screen(self, text: str, stage: Stage) -> Verdict:
        if stage is Stage.INPUT and "Ada" in text:
            return Verdict(Action.REDACT, categories=("personal_name",), reason="Names are hidden from the model.",
                           text=text.replace("Ada", "[name]"), filter_name=self.name)
        return Verdict.allow(text, self.name)


class RedactPlugin:
    @hookimpl
    def register_safety_filters(self, register):
        register(RedactNames())


def test_safety_notices_are_marked_inline_with_the_reason_on_demand(app, window, qtbot) -> None:
    app.host.add("redact", RedactPlugin())
    window.prefs.max_new_tokens = 16
    window.chat.use_documents.setChecked(False)
    answer, _ = ask(qtbot, window, "My name is Ada. Say hello.")
    assert answer is not None
    markers = window.chat.views()[-1].safety_markers()
    assert len(markers) == 1
    marker = markers[0]
    assert "Redacted" in marker.summary.text() and "personal name" in marker.summary.text()
    assert not marker.details.isVisible()
    marker.summary.linkActivated.emit("why")
    assert marker.details.text() == "Names are hidden from the model."
    # Reloading the conversation from the store shows the same marker.
    window.chat.show_conversation(answer.conversation_id)
    reloaded = window.chat.views()[-1].safety_markers()
    assert [m.action for m in reloaded] == ["redact"]


def test_regenerate_and_edit_replace_the_last_turn(app, window, qtbot) -> None:
    chat = window.chat
    chat.use_documents.setChecked(False)
    window.prefs.max_new_tokens = 12
    first, _ = ask(qtbot, window, "What is the capital of France?")
    conversations = Conversations(app.database)

    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as regenerated:
        chat.views()[-1].regenerate_button.click()
    qtbot.waitUntil(lambda: not chat.busy)
    again = regenerated.args[0]
    stored = conversations.messages(again.conversation_id)
    assert [m.text for m in stored if m.role == "user"] == ["What is the capital of France?"]
    assert len(chat.views()) == 2
    assert conversations.get_conversation(first.conversation_id) is None or first.conversation_id == again.conversation_id

    chat.views()[0].edit_button.click()
    assert chat.composer.toPlainText() == "What is the capital of France?"
    chat.composer.setPlainText("What is the capital of Italy?")
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as edited:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not chat.busy)
    stored = conversations.messages(edited.args[0].conversation_id)
    assert [m.text for m in stored if m.role == "user"] == ["What is the capital of Italy?"]
    assert [v.text() for v in chat.views() if v.role == "user"] == ["What is the capital of Italy?"]
    assert window.sidebar.ids() == [edited.args[0].conversation_id]
