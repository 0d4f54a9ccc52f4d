"""Choosing which collections answer: the user's library (``library``), shared ones, or some.

The store and plugin host are real, the model is scripted; the retrievers are doubles,
one of the user's own library and one of a shared collection ``handbook``
(``archivist.SharedCollection``). PostgreSQL collections are chosen the same way in
tests/team/test_read_only.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from doubles import CollectionRetriever, RetrieverPlugin, StaticRetriever

from archivist import ArchivistError, Locator, Passage, SharedCollection
from archivist.collection_choice import LIBRARY, UnknownCollection, collection_of, describe_choice
from archivist.store.conversations import Conversations
from archivist.types import GenerationOptions

SHORT = GenerationOptions(max_new_tokens=24)
MINE = Passage("My notes say the boat leaves Quimby at nine.", "/home/me/notes.txt", Locator(None, None, 0, 44), 1.0)
THEIRS = Passage("The handbook says the office closes at five on Fridays.", "/srv/handbook.pdf",
                 Locator(2, None, 0, 55), 1.0)


@pytest.fixture()
def two_collections(scripted_app):
    scripted_app.host.add("mine", RetrieverPlugin(StaticRetriever([MINE])))
    scripted_app.host.add("theirs", RetrieverPlugin(CollectionRetriever("handbook", [THEIRS])))
    return scripted_app


def paths(answer) -> set[str]:
    return {p.path for p in answer.sources}


def test_the_collections_are_the_library_then_each_shared_one(two_collections) -> None:
    assistant = two_collections.assistant()
    assert assistant.collections() == [LIBRARY, "handbook"]
    assert isinstance(CollectionRetriever("x", []), SharedCollection)
    assert not isinstance(StaticRetriever([]), SharedCollection)
    assert collection_of(StaticRetriever([])) == LIBRARY
    assert describe_choice(frozenset({"handbook", LIBRARY})) == "your library and handbook"


def test_a_choice_limits_the_passages_to_its_collections(two_collections, scripted) -> None:
    assistant = two_collections.assistant()
    question = "When does the office close?"
    assert {p.path for p in assistant.retrieve(question, 5)[0]} == {MINE.path, THEIRS.path}
    assert {p.path for p in assistant.retrieve(question, 5, {LIBRARY})[0]} == {MINE.path}
    assert {p.path for p in assistant.retrieve(question, 5, {"handbook"})[0]} == {THEIRS.path}
    scripted.reply("It closes at five [1].")
    answer = assistant.ask(question, options=SHORT, collections=["handbook"])
    assert paths(answer) == {THEIRS.path}
    assert MINE.text not in scripted.prompts[-1] and THEIRS.text in scripted.prompts[-1]


def test_an_unknown_name_is_refused_listing_the_known_ones(two_collections, scripted) -> None:
    with pytest.raises(UnknownCollection, match=r"no collection named 'handbok' here: choose from "
                                                 r"library \(your own library\), handbook"):
        two_collections.assistant().ask("Hello?", options=SHORT, collections=["handbok"])
    assert scripted.prompts == []  # refused before the model was asked
    with pytest.raises(ArchivistError, match="no collection chosen"):
        two_collections.assistant().check_collections([])


def test_the_conversation_keeps_its_choice_for_the_next_turns(two_collections, scripted) -> None:
    assistant = two_collections.assistant()
    scripted.reply("At nine [1].")
    first = assistant.ask("When does the boat leave?", options=SHORT, collections=[LIBRARY])
    store = Conversations(two_collections.database)
    assert store.chosen_collections(first.conversation_id) == {LIBRARY}
    assert store.get_conversation(first.conversation_id).collections == {LIBRARY}
    scripted.reply("I only know your notes [1].")
    second = assistant.ask("And when does the office close?", options=SHORT, conversation_id=first.conversation_id)
    assert paths(second) == {MINE.path}  # the stored choice, not all of them
    # Another choice replaces it; a new conversation answers from all.
    scripted.reply("At five [1].")
    third = assistant.ask("When does the office close?", options=SHORT, conversation_id=first.conversation_id,
                          collections=["handbook"])
    assert paths(third) == {THEIRS.path} and store.chosen_collections(first.conversation_id) == {"handbook"}
    scripted.reply("Both [1] [2].")
    fresh = assistant.ask("When does the office close?", options=SHORT)
    assert paths(fresh) == {MINE.path, THEIRS.path} and store.chosen_collections(fresh.conversation_id) is None


def test_choosing_keeps_the_conversation_in_its_place(two_collections, scripted) -> None:
    assistant = two_collections.assistant()
    store = Conversations(two_collections.database)
    scripted.reply("One.")
    older = assistant.ask("First?", options=SHORT).conversation_id
    scripted.reply("Two.")
    newer = assistant.ask("Second?", options=SHORT).conversation_id
    store.choose_collections(older, {"handbook"})
    assert [c.id for c in store.list_conversations()] == [newer, older]
    assert store.chosen_collections(older) == {"handbook"}
    store.choose_collections(older, None)
    assert store.chosen_collections(older) is None


def test_ask_and_chat_take_collection(two_collections, scripted) -> None:
    from archivist.cli import State, cli

    scripted.reply("It closes at five [1].")
    result = CliRunner().invoke(cli, ["ask", "When does the office close?", "--collection", "handbook", "--json"],
                                obj=State(two_collections), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "/srv/handbook.pdf" in result.output and MINE.path not in result.output
    scripted.reply("At nine [1].")
    result = CliRunner().invoke(cli, ["chat", "--collection", "library"], input="When does the boat leave?\n",
                                obj=State(two_collections), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Answering from your library." in result.output and "/home/me/notes.txt" in result.output
    assert THEIRS.text not in scripted.prompts[-1]


def test_an_unknown_collection_on_the_command_line_is_one_clear_line(home: Path) -> None:
    """Checked before the model loads: this home has none, and the error is about the name."""
    result = subprocess.run([sys.executable, "-m", "archivist.cli", "ask", "hello", "--collection", "nope"],
                            capture_output=True, text=True, env={**os.environ, "ARCHIVIST_HOME": str(home)},
                            timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: no collection named 'nope' here: choose from library "
                                     "(your own library)")
