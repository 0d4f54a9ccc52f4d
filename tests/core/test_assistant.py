"""One chat turn end to end: the store and plugin host are real; the model is scripted,
except in the tests that are about the real model's part of a turn.

A scripted model (``scripted``, from ``archivist.testing``) answers exactly what the
test queued, so what the pipeline does with an answer (citations, history, screening,
persistence) is asserted the same way on every CPU. The real model's turns assert only
structure: its words differ between instruction sets.
"""

from __future__ import annotations

import threading

from doubles import RetrieverPlugin, StaticRetriever

from archivist import Locator, Passage, Stage, Verdict, hookimpl
from archivist.assistant import NOTHING_FOUND
from archivist.store.conversations import Conversations
from archivist.types import Action, GenerationOptions

SHORT = GenerationOptions(max_new_tokens=24)
# What a real answer may end with: its end-of-turn token, or the token budget.
FINISHED = {"stop", "length", "repetition"}  # "repetition": archivist.repetition cut a loop

FESTIVAL = Passage(
    text="The Zorblat festival takes place every June in the town of Quimby.",
    path="/docs/festivals.txt",
    locator=Locator(page=3, start=0, end=66),
    score=1.0,
)
QUIMBY = Passage(
    text="Quimby is a market town of 4,000 people on the river Lune.",
    path="/docs/towns.txt",
    locator=Locator(page=1, start=10, end=68),
    score=0.8,
)


class ExplodingRetriever:
    name = "exploding"

    def search(self, query: str, k: int = 5) -> list[Passage]:
        raise OSError("index file vanished")


def with_sources(app, *passages: Passage) -> None:
    app.host.add("static", RetrieverPlugin(StaticRetriever(list(passages))))


# -- the real model's part of a turn: structure only ---------------------------------


def test_a_real_turn_streams_text_and_persists_both_messages(app) -> None:
    events = list(app.assistant().stream("What is the capital of Italy?", options=SHORT, use_documents=False))
    assert events[-1].kind == "done"
    answer = events[-1].answer
    streamed = "".join(e.text for e in events if e.kind == "text")
    assert answer.text and streamed.strip() == answer.text
    assert answer.model == "smollm2-135m-instruct"
    assert 0 < answer.stats.completion_tokens <= SHORT.max_new_tokens
    assert answer.stats.prompt_tokens > 5 and answer.stats.ttft_ms > 0
    assert answer.stats.finish_reason in FINISHED
    assert answer.citations == [] and not answer.grounded
    stored = Conversations(app.database).messages(answer.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[0].text == "What is the capital of Italy?"
    assert stored[1].text == answer.text
    assert stored[1].stats["completion_tokens"] == answer.stats.completion_tokens


def test_cancel_stops_the_real_answer_early(app) -> None:
    cancel = threading.Event()
    pieces = []
    for event in app.assistant().stream("Write a long story about a dragon.", cancel=cancel,
                                        options=GenerationOptions(max_new_tokens=200), use_documents=False):
        if event.kind == "text":
            pieces.append(event.text)
            cancel.set()
        if event.kind == "done":
            answer = event.answer
    assert answer.stats.finish_reason == "cancelled"
    assert answer.stats.completion_tokens < 50


# -- the pipeline, on the scripted model ---------------------------------------------


def test_a_turn_streams_the_models_pieces_and_persists_both_messages(scripted_app, scripted) -> None:
    scripted.reply(["Rome", " is the", " capital", " of Italy."])
    events = list(scripted_app.assistant().stream("What is the capital of Italy?", options=SHORT,
                                                  use_documents=False))
    assert [e.kind for e in events][-1] == "done"
    answer = events[-1].answer
    assert "".join(e.text for e in events if e.kind == "text") == "Rome is the capital of Italy."
    assert answer.text == "Rome is the capital of Italy."
    assert answer.stats.completion_tokens == 4 and answer.stats.finish_reason == "stop"
    assert scripted.prompts[-1].endswith("<|user|>\nWhat is the capital of Italy?\n<|assistant|>\n")
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert [(m.role, m.text) for m in stored] == [("user", "What is the capital of Italy?"),
                                                  ("assistant", "Rome is the capital of Italy.")]
    assert stored[1].model == "scripted"
    assert stored[1].stats["completion_tokens"] == 4


def test_the_answer_is_cut_at_max_new_tokens(scripted_app, scripted) -> None:
    scripted.reply("one two three four five six seven eight")
    answer = scripted_app.assistant().ask("Count.", options=GenerationOptions(max_new_tokens=3),
                                          use_documents=False)
    assert answer.text == "one two three"
    assert answer.stats.finish_reason == "length"


def test_cancel_keeps_what_was_shown_and_says_cancelled(scripted_app, scripted) -> None:
    scripted.reply("First sentence here. " * 40)
    cancel = threading.Event()
    shown = []
    for event in scripted_app.assistant().stream("Tell me a story.", cancel=cancel, options=SHORT,
                                                 use_documents=False):
        if event.kind == "text":
            shown.append(event.text)
            cancel.set()
        if event.kind == "done":
            answer = event.answer
    assert answer.stats.finish_reason == "cancelled"
    assert answer.stats.completion_tokens < SHORT.max_new_tokens
    assert answer.text == "".join(shown).strip()
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert stored[-1].text == answer.text


def test_the_conversation_carries_into_the_next_turn(scripted_app, scripted) -> None:
    scripted.reply("Nice to meet you, Ada.")
    scripted.reply("Your name is Ada.")
    assistant = scripted_app.assistant()
    first = assistant.ask("My name is Ada.", options=SHORT, use_documents=False)
    second = assistant.ask("What is my name?", conversation_id=first.conversation_id,
                           options=SHORT, use_documents=False)
    assert scripted.prompts[0].count("<|user|>") == 1  # a new conversation has no history
    # The second prompt holds the first exchange, in order, before the new question.
    prompt = scripted.prompts[1]
    assert prompt.index("<|user|>\nMy name is Ada.") < prompt.index("<|assistant|>\nNice to meet you, Ada.") \
        < prompt.index("<|user|>\nWhat is my name?")
    assert second.conversation_id == first.conversation_id
    stored = Conversations(scripted_app.database).messages(first.conversation_id)
    assert [m.text for m in stored] == ["My name is Ada.", "Nice to meet you, Ada.",
                                        "What is my name?", "Your name is Ada."]


def test_sources_are_numbered_and_cited(scripted_app, scripted) -> None:
    with_sources(scripted_app, FESTIVAL, QUIMBY)
    scripted.reply("Quimby is on the river Lune [2].")
    answer = scripted_app.assistant().ask("Where is Quimby?", options=SHORT)
    # The model was given both sources, numbered in rank order.
    prompt = scripted.prompts[-1]
    assert "[1] (festivals.txt, page 3) The Zorblat festival" in prompt
    assert "[2] (towns.txt, page 1) Quimby is a market town" in prompt
    assert prompt.index("[1] (festivals.txt") < prompt.index("[2] (towns.txt")
    # The answer cites [2], and only [2] is its citation.
    assert answer.grounded
    assert [(c.n, c.path, c.page, c.cited) for c in answer.citations] == [(2, "/docs/towns.txt", 1, True)]
    assert answer.citations[0].snippet.startswith("Quimby is a market town")
    assert [p.path for p in answer.sources] == ["/docs/festivals.txt", "/docs/towns.txt"]
    assert "retrieve_ms" in answer.timings
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert [(c["n"], c["cited"]) for c in stored[-1].citations] == [(2, True)]


def test_a_citation_split_across_pieces_is_read_whole(scripted_app, scripted) -> None:
    with_sources(scripted_app, FESTIVAL, QUIMBY)
    scripted.reply(["Quimby is on the Lu", "ne ", "[", "2", "]", ". It holds the fest", "ival [1", "]."])
    answer = scripted_app.assistant().ask("Where is Quimby?", options=SHORT)
    assert answer.text == "Quimby is on the Lune [2]. It holds the festival [1]."
    assert [(c.n, c.cited) for c in answer.citations] == [(2, True), (1, True)]


def test_multibyte_characters_survive_any_split(scripted_app, scripted) -> None:
    text = "Le café ☕ de Quimby — ouvert en juin 🎉 [1]."
    encoded = text.encode("utf-8")
    # Pieces cut at character boundaries close to every fifth byte, through multi-byte runs.
    pieces, start = [], 0
    for end in range(5, len(encoded) + 5, 5):
        cut = min(end, len(encoded))
        while cut < len(encoded) and (encoded[cut] & 0xC0) == 0x80:
            cut += 1
        if cut > start:
            pieces.append(encoded[start:cut].decode("utf-8"))
            start = cut
    assert "".join(pieces) == text and len(pieces) > 5
    with_sources(scripted_app, FESTIVAL)
    scripted.reply(pieces)
    answer = scripted_app.assistant().ask("Where is the café?", options=GenerationOptions(max_new_tokens=64))
    assert answer.text == text
    assert [(c.n, c.cited) for c in answer.citations] == [(1, True)]
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert stored[-1].text == text


def test_an_answer_that_cites_nothing_lists_its_sources_as_consulted(scripted_app, scripted) -> None:
    with_sources(scripted_app, FESTIVAL, QUIMBY)
    scripted.reply("Quimby is a market town.")
    answer = scripted_app.assistant().ask("Where is Quimby?", options=SHORT)
    assert answer.grounded
    assert [(c.n, c.path, c.cited) for c in answer.citations] == [
        (1, "/docs/festivals.txt", False), (2, "/docs/towns.txt", False)]
    payload = answer.to_dict()
    assert [c["cited"] for c in payload["citations"]] == [False, False]
    stored = Conversations(scripted_app.database).messages(answer.conversation_id)
    assert [c["cited"] for c in stored[-1].citations] == [False, False]


def test_a_number_that_is_no_source_is_no_citation(scripted_app, scripted) -> None:
    with_sources(scripted_app, FESTIVAL, QUIMBY)
    scripted.reply("Quimby is a market town [7].")
    answer = scripted_app.assistant().ask("Where is Quimby?", options=SHORT)
    assert answer.text == "Quimby is a market town [7]."
    assert 7 not in [c.n for c in answer.citations]
    assert answer.citations and not any(c.cited for c in answer.citations)


def test_with_documents_but_nothing_relevant_it_says_so(scripted_app, scripted) -> None:
    scripted_app.host.add("empty", RetrieverPlugin(type("Nothing", (StaticRetriever,), {"count": lambda self: 10})([])))
    answer = scripted_app.assistant().ask("What is the airspeed of a swallow?", options=SHORT)
    assert answer.text == NOTHING_FOUND
    assert answer.stats.completion_tokens == 0
    assert scripted.prompts == [], "with nothing found, the model is not asked to guess"


def test_a_retriever_that_raises_is_disabled_and_the_turn_goes_on(scripted_app, scripted) -> None:
    scripted_app.host.add("exploding", RetrieverPlugin(ExplodingRetriever()))
    scripted.reply("Hello there.")
    answer = scripted_app.assistant().ask("Say hello.", options=SHORT)
    # The turn ends with an answer (today: "nothing found", since the failed retriever
    # was the only one), saved like any other.
    assert answer.text and not answer.grounded and answer.citations == []
    assert Conversations(scripted_app.database).messages(answer.conversation_id)[-1].text == answer.text
    assert not scripted_app.host.enabled("exploding")
    assert any(e.plugin == "exploding" and "vanished" in e.message for e in scripted_app.host.errors)
    # Without the disabled plugin, the next question reaches the model.
    again = scripted_app.assistant().ask("Say hello.", conversation_id=answer.conversation_id, options=SHORT)
    assert again.text == "Hello there."


class BlockEverything:
    name = "block-all"

    def screen(self, text: str, stage: Stage) -> Verdict:
        return Verdict(Action.BLOCK, categories=("test",), reason="Blocked by the test filter.",
                       text="Blocked by the test filter.", filter_name=self.name)


class BlockPlugin:
    @hookimpl
    def register_safety_filters(self, register):
        register(BlockEverything())


def test_a_blocked_question_never_reaches_the_model(scripted_app, scripted) -> None:
    scripted_app.host.add("block", BlockPlugin())
    scripted.reply("This must never be shown.")
    answer = scripted_app.assistant().ask("anything", options=SHORT, use_documents=False)
    assert scripted.prompts == []
    assert answer.stats.completion_tokens == 0
    assert answer.text == "Blocked by the test filter."
    assert answer.verdicts and answer.verdicts[0].action is Action.BLOCK


class BlockSecretOutput:
    """Blocks an answer sentence that tells the secret; lets everything else through."""

    name = "no-secrets"

    def screen(self, text: str, stage: Stage) -> Verdict:
        if stage is Stage.OUTPUT and "swordfish" in text:
            return Verdict(Action.BLOCK, categories=("secret",), reason="The answer told a secret.",
                           text="", filter_name=self.name)
        return Verdict.allow(text, self.name)


class SecretPlugin:
    @hookimpl
    def register_safety_filters(self, register):
        register(BlockSecretOutput())


def test_an_answer_is_stopped_at_the_sentence_that_is_blocked(scripted_app, scripted) -> None:
    scripted_app.host.add("secrets", SecretPlugin())
    scripted.reply(["The door is blue. The pass", "word is sword", "fish. And more."])
    events = list(scripted_app.assistant().stream("What is the password?", options=SHORT, use_documents=False))
    answer = events[-1].answer
    shown = "".join(e.text for e in events if e.kind == "text")
    assert "swordfish" not in shown and "swordfish" not in answer.text
    assert answer.text.startswith("The door is blue.")
    assert answer.stats.finish_reason == "blocked"
    assert any("no-secrets" in v.filter_name and v.action is Action.BLOCK for v in answer.verdicts)


class RaisesEverywhere:
    """A plugin whose retriever and filter both raise mid-turn (the filter's failure
    withholds what it could not screen: tests/core/test_fail_closed.py)."""

    name = "broken"

    def count(self) -> int:
        return 3

    def search(self, query: str, k: int = 5) -> list[Passage]:
        raise RuntimeError("retriever bug")

    def screen(self, text: str, stage: Stage) -> Verdict:
        raise RuntimeError("filter bug")


class BrokenPlugin:
    @hookimpl
    def register_retrievers(self, register):
        register(RaisesEverywhere())

    @hookimpl
    def register_safety_filters(self, register):
        register(RaisesEverywhere())


def test_a_broken_plugin_costs_the_user_nothing_they_had(scripted_app, scripted) -> None:
    scripted.reply("I will remember 42.")
    scripted.reply("Hello.")
    earlier = scripted_app.assistant().ask("Remember the number 42.", options=SHORT, use_documents=False)
    scripted_app.host.add("broken", BrokenPlugin())
    # Its filter fails closed: the question it could not screen is not answered.
    withheld = scripted_app.assistant().ask("Say hello.", options=SHORT)
    assert withheld.text == "I can't answer this: the safety filter broken could not check it (RuntimeError: filter bug)."
    assert scripted_app.host.enabled("broken") and scripted.prompts == [scripted.prompts[0]]
    # Its retriever, once the user switches the filter's plugin off for the session, is.
    scripted_app.host.disable("broken", "test", RuntimeError("switched off"))
    answer = scripted_app.assistant().ask("Say hello.", options=SHORT)
    assert answer.text == "Hello."
    conversations = Conversations(scripted_app.database)
    assert [m.text for m in conversations.messages(earlier.conversation_id)] == [
        "Remember the number 42.", "I will remember 42."]
    assert len(conversations.list_conversations()) == 3



# -- what the assistant depends on: what it uses, not the application -----------------


def test_the_assistant_answers_with_what_it_is_handed_no_application_needed(tmp_path) -> None:
    from archivist.assistant import Assistant
    from archivist.context import PluginContext
    from archivist.plugins import PluginHost
    from archivist.store.database import open_database
    from archivist.testing import ScriptedBackend

    backend = ScriptedBackend()
    backend.reply("Every June [1].")
    host = PluginHost(PluginContext(home=tmp_path), load_entry_points=False)
    host.add("static", RetrieverPlugin(StaticRetriever([FESTIVAL, QUIMBY])))
    database = open_database(tmp_path / "archivist.db")
    asked: list[str | None] = []

    def load_model(model: str | None):
        asked.append(model)
        return backend.load(backend.info)

    assistant = Assistant(host, load_model=load_model, conversations=lambda: Conversations(database),
                          preference=lambda key, default: {"sources": 1}.get(key, default))
    try:
        answer = assistant.ask("When is the Zorblat festival?", options=SHORT)
        assert asked == [None]  # the chosen model
        assert answer.text == "Every June [1]." and [c.path for c in answer.citations] == [FESTIVAL.path]
        assert [p.path for p in answer.sources] == [FESTIVAL.path]  # one source, as preferred
        assert [m.text for m in Conversations(database).messages(answer.conversation_id)] == [
            "When is the Zorblat festival?", "Every June [1]."]
    finally:
        database.close()


def test_the_assistant_module_does_not_know_the_application() -> None:
    """application.py builds the assistant; the assistant never reaches back (no cycle)."""
    import ast
    from pathlib import Path

    import archivist.assistant

    source = Path(archivist.assistant.__file__).read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not any(name and name.startswith("archivist.application") for name in imported)
    assert "archivist.application" not in source
