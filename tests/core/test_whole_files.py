"""Questions about whole files pinned to a conversation, on the scripted model.

The files are real (PDFs PDFium writes here, read by the built-in loaders the plugins
register), the store and plugin host are real; the model is scripted, so what the turn
does with its notes and answers (whole or in parts, citations mapped back to pages,
cancel, pins kept) is asserted the same way on every CPU. The real model's part is in
test_whole_files_real.py and asserts structure only.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from pdfs import report_pages, text_pdf

from archivist.assistant import NOTHING_IN_FILES
from archivist.errors import UnreadableDocument
from archivist.store.conversations import Conversations
from archivist.types import GenerationOptions

SHORT = GenerationOptions(max_new_tokens=24)


@pytest.fixture()
def fifty_pages(tmp_path: Path) -> Path:
    return text_pdf(tmp_path / "report.pdf", report_pages(50))


@pytest.fixture()
def budget(scripted_app):
    """Sets the tokens a whole-file turn may fill (the scripted model counts words)."""
    def set_budget(tokens: int) -> None:
        scripted_app.settings().set("gui.file_context_budget", tokens)
    return set_budget


def run(assistant, question: str, scripted=None, final: str | None = None, options=SHORT, **kwargs):
    """The turn's events and answer; ``final``: the answer the scripted model gives once
    the notes are taken (queued then, in place of the notes left over)."""
    events = []
    for event in assistant.stream(question, options=options, **kwargs):
        events.append(event)
        if final is not None and event.kind == "progress" and event.text.startswith("Writing the answer"):
            scripted.replies.clear()
            scripted.reply(final)
    assert events[-1].kind == "done"
    return events, events[-1].answer


def sources_in(prompt: str) -> dict[int, int]:
    """{source number: page} of the numbered sources a prompt gave the model."""
    return {int(n): int(p) for n, p in re.findall(r"\[(\d+)\] \(report\.pdf, page (\d+)\)", prompt)}


def test_a_file_that_fits_goes_in_whole_with_each_page_a_numbered_source(scripted_app, scripted, tmp_path) -> None:
    pdf = text_pdf(tmp_path / "report.pdf", report_pages(3))
    scripted.reply("Page two covers item 14 [2].")
    events, answer = run(scripted_app.assistant(), "What does the report cover?", files=[pdf])
    assert len(scripted.prompts) == 1  # one call: no parts
    prompt = scripted.prompts[0]
    assert sources_in(prompt) == {1: 1, 2: 2, 3: 3}
    assert all(f"P{n}Q" in prompt for n in (1, 2, 3))
    assert answer.parts == 0 and answer.files == [str(pdf)] and answer.grounded
    assert [(c.n, c.path, c.page, c.cited) for c in answer.citations] == [(2, str(pdf), 2, True)]
    assert "P2Q" in answer.citations[0].snippet
    assert not [e for e in events if e.kind == "progress"]


def test_a_fifty_page_file_that_does_not_fit_is_read_in_parts_and_cited_by_page(
        scripted_app, scripted, budget, fifty_pages) -> None:
    budget(400)
    # More notes than parts are queued; the pass takes one per part, then the answer.
    notes = [f"Part note {k} [2]." if k % 3 else "Nothing relevant." for k in range(1, 60)]
    for note in notes:
        scripted.reply(note)
    final = "The plan covers budget items [2]."
    events, answer = run(scripted_app.assistant(), "Summarise this report.", scripted, final, files=[fifty_pages])
    progress = [e.text for e in events if e.kind == "progress"]
    parts = answer.parts
    assert parts > 2
    reading = [line for line in progress if line.startswith("Reading part")]
    assert reading[0].startswith(f"Reading part 1 of {parts} (report.pdf, page")
    assert len(reading) == parts
    map_prompts = scripted.prompts[:parts]
    # Nothing is lost: every page is in exactly one part, in order.
    seen = [page for prompt in map_prompts for page in sources_in(prompt).values()]
    assert seen == list(range(1, 51))
    assert all(sum(f"P{n}Q" in p for p in map_prompts) == 1 for n in range(1, 51))
    assert all(f"part {k} of {parts}" in p for k, p in enumerate(map_prompts, start=1))
    # The answer (the reduce call) saw the notes that held something, numbered by part.
    reduce_prompt = scripted.prompts[parts]
    assert len(scripted.prompts) == parts + 1
    assert "[1] (report.pdf" in reduce_prompt and "[3] (report.pdf" not in reduce_prompt
    assert "Part note 2" in reduce_prompt and "Nothing relevant" not in reduce_prompt
    assert "Part note 2 [2]" not in reduce_prompt  # a note's own source numbers are taken out
    # The answer cites [2] (part 2's note), which cited its own source [2]: the
    # citation is that page.
    assert answer.text == final
    [citation] = answer.citations
    part_two = sources_in(map_prompts[1])
    assert (citation.n, citation.path, citation.page, citation.cited) == (2, str(fifty_pages), part_two[2], True)
    assert f"P{part_two[2]}Q" in citation.snippet
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert [(c["n"], c["page"]) for c in stored[-1].citations] == [(2, part_two[2])]
    assert stored[-1].stats["map_parts"] == parts and stored[-1].stats["map_calls"] == parts


def test_notes_too_long_for_the_answer_are_combined_first(scripted_app, scripted, budget, fifty_pages) -> None:
    budget(400)
    # (Long, and not a loop: archivist.repetition would cut a note that repeats itself.)
    long_note = " ".join(f"Budget item {k} of the plan costs {7 * k} units in {2000 + k}." for k in range(1, 7)) + " [1]."
    for _ in range(200):
        scripted.reply(long_note)
    events, answer = run(scripted_app.assistant(), "Summarise this report.", scripted, "It is a plan [1].",
                         GenerationOptions(max_new_tokens=100), files=[fifty_pages])
    progress = [e.text for e in events if e.kind == "progress"]
    assert any(line.startswith("Combining notes") for line in progress)
    calls = int(answer.timings["map_calls"])
    assert calls > answer.parts and len(scripted.prompts) == calls + 1
    # Combined notes keep part numbers, so the answer's [1] still points to part 1's page.
    assert [(c.n, c.page) for c in answer.citations] == [(1, 1)]


def test_stop_during_the_map_pass_ends_the_turn_and_keeps_it(scripted_app, scripted, budget, fifty_pages) -> None:
    budget(400)
    for k in range(60):
        scripted.reply(f"Note {k} [1].")
    cancel = threading.Event()
    events = []
    for event in scripted_app.assistant().stream("Summarise this report.", files=[fifty_pages], options=SHORT,
                                                 cancel=cancel):
        events.append(event)
        if event.kind == "progress" and event.text.startswith("Reading part 3 "):
            cancel.set()
    answer = events[-1].answer
    assert answer.stats.finish_reason == "cancelled"
    assert len(scripted.prompts) == 3  # parts 1 and 2, and part 3 asked but stopped at once
    assert answer.text.startswith("Stopped while reading")
    assert answer.citations == []
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert stored[-1].text == answer.text


def test_a_file_that_cannot_be_read_is_named_in_one_line_before_the_model_is_asked(
        scripted_app, scripted, tmp_path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a PDF\n")
    with pytest.raises(UnreadableDocument) as raised:
        scripted_app.assistant().ask("Summarise it.", files=[broken], options=SHORT)
    message = str(raised.value)
    assert message.startswith(f"cannot read {broken}: ") and "\n" not in message
    missing = tmp_path / "gone.txt"
    with pytest.raises(UnreadableDocument, match=r"cannot read .*gone\.txt: no such file"):
        scripted_app.assistant().ask("Summarise it.", files=[missing], options=SHORT)
    unknown = tmp_path / "data.xyz"
    unknown.write_text("hello")
    with pytest.raises(UnreadableDocument, match=r"no loader for '\.xyz' files"):
        scripted_app.assistant().ask("Summarise it.", files=[unknown], options=SHORT)
    assert scripted.prompts == []
    assert Conversations(scripted_app.database).list_conversations() == []


def test_pins_are_kept_with_the_conversation_until_unpinned(scripted_app, scripted, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The boiler is serviced every October by Acme Heating.\n", encoding="utf-8")
    pdf = text_pdf(tmp_path / "report.pdf", report_pages(2))
    scripted.reply("October [1].")
    scripted.reply("Page one [2].")
    scripted.reply("No files now.")
    assistant = scripted_app.assistant()
    first = assistant.ask("When is the boiler serviced?", files=[notes, pdf], options=SHORT)
    conversations = Conversations(scripted_app.database)
    assert conversations.pinned_files(first.conversation_id) == (str(notes), str(pdf))
    assert conversations.get_conversation(first.conversation_id).pinned_files == (str(notes), str(pdf))
    # The next question, without files, is answered from the pinned ones again.
    second = assistant.ask("And the report?", conversation_id=first.conversation_id, options=SHORT,
                           use_documents=False)
    assert "Acme Heating" in scripted.prompts[1] and "P2Q" in scripted.prompts[1]
    assert second.files == [str(notes), str(pdf)]
    assert [(c.path, c.page) for c in second.citations] == [(str(pdf), 1)]
    # An empty list unpins: the conversation answers as any other again.
    third = assistant.ask("Anything else?", conversation_id=first.conversation_id, files=[], options=SHORT,
                          use_documents=False)
    assert third.files == [] and "Acme Heating" not in scripted.prompts[2]
    assert conversations.pinned_files(first.conversation_id) == ()


def test_pinning_from_the_store_keeps_the_conversations_place(scripted_app, scripted, tmp_path) -> None:
    scripted.reply("Hello.")
    answer = scripted_app.assistant().ask("Hi", options=SHORT, use_documents=False)
    conversations = Conversations(scripted_app.database)
    before = conversations.get_conversation(answer.conversation_id)
    conversations.pin_files(answer.conversation_id, [str(tmp_path / "a.txt"), str(tmp_path / "a.txt")])
    after = conversations.get_conversation(answer.conversation_id)
    assert after.pinned_files == (str(tmp_path / "a.txt"),) and after.updated_at == before.updated_at


def test_files_with_nothing_relevant_say_so_without_guessing(scripted_app, scripted, budget, fifty_pages) -> None:
    budget(400)
    for _ in range(60):
        scripted.reply("Nothing relevant.")
    _events, answer = run(scripted_app.assistant(), "Who won the 1966 World Cup?", files=[fifty_pages])
    assert answer.text == NOTHING_IN_FILES and answer.citations == []
    assert len(scripted.prompts) == answer.parts  # no answer call over no notes


def test_a_pinned_file_is_read_once_while_unchanged_and_again_when_it_changes(scripted_app, scripted,
                                                                               tmp_path) -> None:
    """A follow-up question reuses the document read for the last one (a long PDF takes
    seconds to parse); an edited file is read afresh, so the answer is never from old text."""
    notes = tmp_path / "notes.txt"
    notes.write_text("The boiler is serviced every October by Acme Heating.\n", encoding="utf-8")
    calls: list[Path] = []
    txt = next(c.obj for c in scripted_app.host.loaders() if ".txt" in c.obj.extensions)
    real_load = txt.load

    def counting_load(path, *args, **kwargs):
        calls.append(Path(path))
        return real_load(path, *args, **kwargs)

    txt.load = counting_load
    try:
        for _ in range(3):
            scripted.reply("October [1].")
        first = scripted_app.assistant().ask("When is the boiler serviced?", files=[notes], options=SHORT)
        scripted_app.assistant().ask("Who does it?", conversation_id=first.conversation_id, options=SHORT,
                                     use_documents=False)
        assert calls == [notes]  # the second turn (a new assistant, as the window makes) read nothing
        assert "Acme Heating" in scripted.prompts[1]
        notes.write_text("The boiler is serviced every April by Brightside Boilers.\n", encoding="utf-8")
        os.utime(notes, ns=(notes.stat().st_atime_ns, notes.stat().st_mtime_ns + 1_000_000_000))
        scripted_app.assistant().ask("And now?", conversation_id=first.conversation_id, options=SHORT,
                                     use_documents=False)
        assert calls == [notes, notes]
        assert "Brightside Boilers" in scripted.prompts[2] and "Acme Heating" not in scripted.prompts[2]
    finally:
        txt.load = real_load


def test_the_read_cache_keeps_to_its_bounds() -> None:
    from archivist.types import Document, DocumentPart, Locator
    from archivist.whole_files import ReadCache

    def doc(chars: int) -> Document:
        return Document(path="x", parts=(DocumentPart(text="a" * chars, locator=Locator(page=1)),))

    cache = ReadCache(max_chars=100, max_files=2)
    cache.put(("a", 1, 1, "p"), doc(40))
    cache.put(("b", 1, 1, "p"), doc(40))
    assert cache.get(("a", 1, 1, "p")) is not None  # "a" is now the most recently asked about
    cache.put(("c", 1, 1, "p"), doc(40))  # over both bounds: the least recent ("b") goes
    assert cache.get(("b", 1, 1, "p")) is None and len(cache) == 2
    cache.put(("a", 2, 2, "p"), doc(10))  # a new version of "a" replaces the old one
    assert cache.get(("a", 1, 1, "p")) is None and cache.get(("a", 2, 2, "p")) is not None and len(cache) == 2
    cache.put(("big", 1, 1, "p"), doc(101))  # larger than the whole cache: not kept
    assert cache.get(("big", 1, 1, "p")) is None


def test_a_summary_that_cites_no_part_is_matched_to_the_pages_it_repeats(
        scripted_app, scripted, budget, fifty_pages) -> None:
    """The built-in model rarely writes [n]: the pages whose words its sentences repeat
    are listed as matched (not cited), each with its page."""
    budget(400)
    for k in range(1, 60):
        scripted.reply(f"Part note {k} [2]." if k % 3 else "Nothing relevant.")
    final = "Section 2 covers budget item 14 of the plan. The plan has many pages."
    _, answer = run(scripted_app.assistant(), "Summarise this report.", scripted, final, files=[fifty_pages])
    [citation] = answer.citations
    assert (citation.n, citation.page, citation.cited, citation.matched) == (1, 2, False, True)
    assert "P2Q" in citation.snippet


def test_a_summary_that_repeats_a_note_is_matched_to_the_page_that_note_cited(
        scripted_app, scripted, budget, fifty_pages) -> None:
    """The answer is written from the notes, not the pages: a sentence whose words are a
    note's (and no page's) is matched to that note's part, at the page the note cited."""
    budget(400)
    for k in range(1, 60):
        scripted.reply(f"Auditors flagged {k * 100} unpaid invoices [2]." if k % 3 else "Nothing relevant.")
    final = "Auditors flagged 400 unpaid invoices in the report."
    _, answer = run(scripted_app.assistant(), "Summarise this report.", scripted, final, files=[fifty_pages])
    part_four = sources_in(scripted.prompts[3])
    [citation] = answer.citations
    assert (citation.n, citation.page, citation.cited, citation.matched) == (4, part_four[2], False, True)
    assert f"P{part_four[2]}Q" in citation.snippet


def test_a_note_that_loops_is_cut_where_it_starts_repeating(scripted_app, scripted, budget, fifty_pages) -> None:
    """archivist.repetition on the notes of a file read in parts: what the part said is
    kept, the loop is not (nor read to its end), and the turn counts the cut."""
    budget(400)
    loop = "Page 2 covers budget item 14 [2]. " + "The plan has many pages of figures. " * 20
    scripted.reply(loop)
    for _ in range(1, 60):
        scripted.reply("Nothing relevant.")
    _, answer = run(scripted_app.assistant(), "Summarise this report.", scripted,
                 "Item 14 is on page two [1].", files=[fifty_pages])
    reduce_prompt = scripted.prompts[-1]
    assert "Page 2 covers budget item 14" in reduce_prompt
    assert reduce_prompt.count("The plan has many pages of figures.") == 1
    assert answer.timings["map_loops_cut"] == 1.0
