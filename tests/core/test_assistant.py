"""One chat turn end to end with the real model, store and plugin host."""

from __future__ import annotations

import threading

from doubles import RetrieverPlugin, StaticRetriever

from archivist import Locator, Passage, Stage, Verdict, hookimpl
from archivist.assistant import NOTHING_FOUND
from archivist.store.conversations import Conversations
from archivist.types import Action, GenerationOptions

SHORT = GenerationOptions(max_new_tokens=24)


class ExplodingRetriever:
    name = "exploding"

    def search(self, query: str, k: int = 5) -> list[Passage]:
        raise OSError("index file vanished")


def test_a_turn_streams_text_and_persists_both_messages(app) -> None:
    events = list(app.assistant().stream("What is the capital of Italy?", options=SHORT, use_documents=False))
    assert events[-1].kind == "done"
    answer = events[-1].answer
    streamed = "".join(e.text for e in events if e.kind == "text")
    assert streamed.strip() == answer.text
    assert "rome" in answer.text.lower()
    stored = Conversations(app.database).messages(answer.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].text == answer.text
    assert stored[1].stats["completion_tokens"] == answer.stats.completion_tokens


def test_the_conversation_carries_into_the_next_turn(app) -> None:
    assistant = app.assistant()
    first = assistant.ask("My name is Ada.", options=SHORT, use_documents=False)
    second = assistant.ask("What is my name?", conversation_id=first.conversation_id,
                           options=SHORT, use_documents=False)
    assert second.stats.prompt_tokens > first.stats.prompt_tokens
    assert len(Conversations(app.database).messages(first.conversation_id)) == 4


def test_cancel_stops_the_answer_early(app) -> None:
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


def test_sources_are_numbered_and_cited(app) -> None:
    passage = Passage(
        text="The Zorblat festival takes place every June in the town of Quimby.",
        path="/docs/festivals.txt",
        locator=Locator(page=3, start=0, end=66),
        score=1.0,
    )
    app.host.add("static", RetrieverPlugin(StaticRetriever([passage])))
    answer = app.assistant().ask("When does the Zorblat festival take place?", options=SHORT)
    assert answer.grounded
    assert answer.citations, "the answer must cite (or fall back to) its source"
    assert answer.citations[0].path == "/docs/festivals.txt"
    assert answer.citations[0].page == 3
    assert "june" in answer.text.lower()
    assert "retrieve_ms" in answer.timings


def test_with_documents_but_nothing_relevant_it_says_so(app) -> None:
    app.host.add("empty", RetrieverPlugin(type("Nothing", (StaticRetriever,), {"count": lambda self: 10})([])))
    answer = app.assistant().ask("What is the airspeed of a swallow?", options=SHORT)
    assert answer.text == NOTHING_FOUND
    assert answer.stats.completion_tokens == 0


def test_a_retriever_that_raises_is_disabled_and_the_turn_goes_on(app) -> None:
    app.host.add("exploding", RetrieverPlugin(ExplodingRetriever()))
    answer = app.assistant().ask("Say hello.", options=SHORT)
    assert answer.text
    assert not app.host.enabled("exploding")
    assert any(e.plugin == "exploding" and "vanished" in e.message for e in app.host.errors)


class BlockEverything:
    name = "block-all"

    def screen(self, text: str, stage: Stage) -> Verdict:
        return Verdict(Action.BLOCK, categories=("test",), reason="Blocked by the test filter.",
                       text="Blocked by the test filter.", filter_name=self.name)


class BlockPlugin:
    @hookimpl
    def register_safety_filters(self, register):
        register(BlockEverything())


def test_a_blocked_question_never_reaches_the_model(app) -> None:
    app.host.add("block", BlockPlugin())
    answer = app.assistant().ask("anything", options=SHORT, use_documents=False)
    assert answer.stats.completion_tokens == 0
    assert "blocked" in answer.text.lower()
    assert answer.verdicts and answer.verdicts[0].action is Action.BLOCK


class RaisesEverywhere:
    """A plugin whose retriever and filter both raise mid-turn."""

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


def test_a_broken_plugin_costs_the_user_nothing_they_had(app) -> None:
    earlier = app.assistant().ask("Remember the number 42.", options=SHORT, use_documents=False)
    app.host.add("broken", BrokenPlugin())
    answer = app.assistant().ask("Say hello.", options=SHORT)
    assert answer.text
    assert not app.host.enabled("broken")
    conversations = Conversations(app.database)
    assert [m.text for m in conversations.messages(earlier.conversation_id)][0] == "Remember the number 42."
    assert len(conversations.list_conversations()) == 2
