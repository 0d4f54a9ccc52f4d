"""Files pinned to a conversation, in the window: chips above the input, progress while a
long file is read in parts, page citations, pins restored with the conversation, and
"Ask about a file" from the Library page. Real widgets offscreen, the scripted model.

Set ``ARCHIVIST_SCREENSHOT_DIR`` to keep the picture of the chat answering from a pinned
50-page PDF (docs/screenshots/pinned-files.png is made this way).
"""

from __future__ import annotations

import os
from pathlib import Path

from pdfs import report_pages, text_pdf
from PySide6.QtCore import Qt

from archivist.store.conversations import Conversations

TURN_TIMEOUT_MS = 120_000


def ask(qtbot, window, question: str, progress: list[str] | None = None):
    chat = window.chat
    chat.composer.setPlainText(question)
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as finished:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Return)
        assert chat.worker is not None, "Enter must start a turn"
        if progress is not None:
            chat.worker.progress.connect(progress.append)
    qtbot.waitUntil(lambda: not chat.busy)
    return finished.args[0]


def test_a_pinned_fifty_page_pdf_is_read_in_parts_and_cited_by_page(
        scripted_app, scripted, scripted_window, qtbot, tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "annual-report.pdf", report_pages(50))
    scripted_app.settings().set("gui.file_context_budget", 400)
    for _ in range(1, 40):
        scripted.reply("The report sets out its budget items section by section, and the committee "
                       "agreed on the next steps [1].")
    chat = scripted_window.chat
    chat.pin_files([str(pdf)])
    assert chat.pinned_bar.isVisible()
    assert [c.text() for c in chat.pinned_bar.chips()] == ["annual-report.pdf  \u00d7"]
    assert not chat.use_documents.isVisible()  # the pinned file answers, not the library
    progress: list[str] = []
    answer = ask(qtbot, scripted_window, "Summarise this report.", progress)
    assert answer is not None and answer.parts > 2
    assert progress[0].startswith(f"Reading part 1 of {answer.parts} (annual-report.pdf, page")
    view = chat.views()[-1]
    assert view.text() == answer.text
    assert view.sources_label.isVisible()
    assert "annual-report.pdf" in view.sources_label.text() and "p. 1" in view.sources_label.text()
    assert view.citation(1).page == 1 and view.citation(1).path == str(pdf)
    assert f"read in {answer.parts} parts" in view.stats.text()
    directory = os.environ.get("ARCHIVIST_SCREENSHOT_DIR")
    if directory:
        scripted_window.resize(1100, 720)
        qtbot.wait(300)
        scripted_window.grab().save(str(Path(directory) / "pinned-files.png"))
    stored = Conversations(scripted_app.database)
    assert stored.pinned_files(answer.conversation_id) == (str(pdf),)


def test_pins_come_back_with_the_conversation_and_a_click_unpins(
        scripted_app, scripted, scripted_window, qtbot, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The boiler is serviced every October.\n", encoding="utf-8")
    chat = scripted_window.chat
    chat.pin_files([str(notes)])
    scripted.reply("October [1].")
    answer = ask(qtbot, scripted_window, "When is the boiler serviced?")
    chat.show_conversation(None)
    assert chat.pinned == [] and not chat.pinned_bar.isVisible() and chat.use_documents.isVisible()
    chat.show_conversation(answer.conversation_id)
    assert chat.pinned == [str(notes)] and chat.pinned_bar.isVisible()
    qtbot.mouseClick(chat.pinned_bar.chips()[0], Qt.MouseButton.LeftButton)
    assert chat.pinned == [] and not chat.pinned_bar.isVisible()
    assert Conversations(scripted_app.database).pinned_files(answer.conversation_id) == ()


def test_ask_about_a_file_from_the_library_pins_it_to_a_new_conversation(
        scripted_app, scripted, scripted_window, qtbot, tmp_path: Path) -> None:
    notes = tmp_path / "contract.txt"
    notes.write_text("Payment is due on 1 March. Notice must be given by 30 June.\n", encoding="utf-8")
    scripted_window.show_page("Library")
    scripted_window.library.ask_about(str(notes))
    assert scripted_window.stack.currentWidget() is not scripted_window.library
    chat = scripted_window.chat
    assert chat.conversation_id is None and chat.pinned == [str(notes)]
    scripted.reply("1 March and 30 June [1].")
    answer = ask(qtbot, scripted_window, "List every deadline.")
    assert "30 June" in scripted.prompts[-1]
    assert [(c.path, c.cited) for c in answer.citations] == [(str(notes), True)]
