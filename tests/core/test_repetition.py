"""An answer is cut where the model starts repeating itself (archivist.repetition): the
loop guard on its own, in a streamed turn, and in the notes of a file read in parts.
The model is scripted: what is asserted is the cut, the same on every CPU."""

from __future__ import annotations

from doubles import RetrieverPlugin, StaticRetriever

from archivist import Locator, Passage
from archivist.repetition import LoopGuard, sentences, without_loop
from archivist.types import GenerationOptions

LOOP = ("The pilot had 1,250 hours of flight time. The accident was ruled out as a result of a "
        "malfunction. " + "The accident was ruled out as a result of a malfunction. " * 12)


def test_a_sentence_said_again_repeats_and_short_or_new_ones_do_not() -> None:
    guard = LoopGuard()
    assert guard.loop_start("The study will examine the factors that influence day-case surgery.") is None
    assert guard.loop_start("Yes.") is None and guard.loop_start("Yes.") is None  # too short to be a loop
    assert guard.loop_start("- The pilot had 1,250 hours in total.") is None
    assert guard.loop_start("- The pilot had 300 hours in this model.") is None  # a list, not a loop
    assert guard.loop_start("The study will examine the factors that influence day-case surgery.") is not None
    # Most of its word triples said before: a loop with a word changed.
    guard = LoopGuard()
    guard.loop_start("It will examine the factors that may influence routine day-case surgery pathways and outcomes.")
    assert guard.loop_start("It will explore the factors that may influence routine day-case surgery pathways and outcomes.") is not None


def test_a_phrase_written_three_times_in_a_row_is_cut_after_its_first_copy() -> None:
    looped = ("The safety filter is a built-in filter that is designed to prevent the creation of a buffer "
              "that can be used to create a buffer that can be used to create a buffer that can be used to create a buffer "
              "that")
    cut = LoopGuard().loop_start(looped)
    assert cut is not None and looped[:cut].rstrip() == (
        "The safety filter is a built-in filter that is designed to prevent the creation of a buffer "
        "that can be used to create")
    # Twice is emphasis or a list, not a loop; nor are short words said three times.
    assert LoopGuard().loop_start("It is very, very, very old: a long way, a long way from home.") is None
    # A loop that runs across two pieces (the screen cuts a long sentence at 400
    # characters): its second copy began in the first, so none of the second is kept.
    guard = LoopGuard()
    assert guard.loop_start("We went to the shop, then we went to the shop") is None
    assert guard.loop_start(", then we went to the shop, then we rested") == 0


def test_the_stream_is_cut_before_the_repeat_and_read_no_further() -> None:
    read = []

    def stream():
        for word in LOOP.split(" "):
            read.append(word)
            yield word + " "

    text, looped = without_loop(stream())
    assert looped
    assert text == "The pilot had 1,250 hours of flight time. The accident was ruled out as a result of a malfunction."
    assert len(read) < len(LOOP.split(" ")) / 3
    assert list(sentences(["One. Two", " three.\nFour"])) == ["One.", " Two three.", "\n", "Four"]
    assert without_loop(["No loop here at all."]) == ("No loop here at all.", False)


def test_a_looping_answer_ends_before_the_repeat_and_generation_stops(scripted_app, scripted) -> None:
    scripted.reply(LOOP)
    shown = []
    for event in scripted_app.assistant().stream("What happened?", use_documents=False,
                                                 options=GenerationOptions(max_new_tokens=400)):
        if event.kind == "text":
            shown.append(event.text)
        if event.kind == "done":
            answer = event.answer
    assert answer.text == "The pilot had 1,250 hours of flight time. The accident was ruled out as a result of a malfunction."
    assert "".join(shown).strip() == answer.text
    assert answer.stats.finish_reason == "repetition"
    assert answer.stats.completion_tokens < len(LOOP.split()) / 3  # the model was stopped, not read to the end


def test_ask_says_the_answer_was_cut_where_it_began_repeating(scripted_app, scripted) -> None:
    from click.testing import CliRunner

    from archivist.cli import REPEATING_NOTE, State, cli

    scripted_app.host.add("static", RetrieverPlugin(StaticRetriever([
        Passage(text="The pilot had logged 1,250 hours.", path="/docs/report.txt", locator=Locator(page=2))])))
    scripted.reply(LOOP)
    result = CliRunner().invoke(cli, ["ask", "How many hours?"], obj=State(scripted_app), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("as a result of a malfunction.")
    assert result.stdout.count("ruled out") == 1
    assert REPEATING_NOTE in result.stderr
