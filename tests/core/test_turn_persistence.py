"""A chat turn is stored whole or not at all, and a damaged old conversation still
continues with a prompt whose roles alternate.

``kill -9`` during ``archivist ask`` used to leave empty conversations and questions
without answers (the conversation, the question and the answer were three
transactions); continuing such a conversation stored user, user, assistant.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_plugin_host import make_distribution

from archivist.store.conversations import Conversations
from archivist.types import GenerationOptions

# A third-party plugin with a slow model (a word every 50 ms, as a real one on a slow
# machine) and, with SLOW_DISK=1, a database whose every commit takes a second more, as
# on a busy disk: the moments a kill lands in, made wide enough to hit.
SLOW_PLUGIN = """
import os
import time

from archivist import ModelInfo, hookimpl

INFO = ModelInfo(id="slow", path="slow://model", name="Slow test model", backend="slow")
WORDS = int(os.environ.get("SLOW_WORDS", "400"))

if os.environ.get("SLOW_DISK"):
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    event.listen(Session, "after_commit", lambda session: time.sleep(1.0))


class SlowModel:
    info = INFO
    provider = "cpu"

    def count_tokens(self, text):
        return len(text.split())

    def apply_chat_template(self, messages):
        return "".join(f"<|{m.role}|>{m.content}" for m in messages) + "<|assistant|>"

    def stream(self, prompt, options, stats=None, cancel=None):
        for i in range(WORDS):
            time.sleep(0.05)
            yield f"word{i} "
        yield "end."

    def close(self):
        pass


class SlowBackend:
    name = "slow"

    def models(self):
        return [INFO]

    def providers(self):
        return ["cpu"]

    def can_load(self, model):
        return model.backend == "slow"

    def load(self, model, provider=None):
        return SlowModel()


@hookimpl
def register_model_backends(register):
    register(SlowBackend())
"""


def damage(db_path: Path) -> tuple[int, int]:
    """(conversations without messages, questions not followed by an answer)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        empty = conn.execute("SELECT count(*) FROM conversations c WHERE NOT EXISTS "
                             "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id)").fetchone()[0]
        rows = conn.execute("SELECT conversation_id, role FROM messages ORDER BY conversation_id, id").fetchall()
    unanswered = sum(1 for (c, role), after in zip(rows, [*rows[1:], (None, None)])
                     if role == "user" and (after[0] != c or after[1] != "assistant"))
    return empty, unanswered


def conversations_stored(db_path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
    except sqlite3.Error:
        return 0  # not made yet, or its tables not yet


@pytest.mark.parametrize("moment", ["while answering", "while storing the turn"])
def test_kill_9_during_ask_leaves_no_half_turn(home: Path, tmp_path: Path, moment: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "tp_slow_model", SLOW_PLUGIN)
    env = {**os.environ, "ARCHIVIST_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    if moment == "while storing the turn":
        env.update(SLOW_DISK="1", SLOW_WORDS="3")
    db = home / "archivist.db"
    child = subprocess.Popen([sys.executable, "-m", "archivist.cli", "ask", "Tell me a long story.", "--no-docs",
                              "--model", "slow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        if moment == "while answering":
            assert child.stdout is not None
            child.stdout.read(len("word0 word1 "))  # the answer is streaming
        else:
            while conversations_stored(db) == 0 and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)  # the first row of the turn is on disk
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    if db.exists():
        assert damage(db) == (0, 0)


def test_a_damaged_conversation_continues_with_alternating_roles(scripted_app, scripted) -> None:
    """A conversation as the old three transactions left it: a question without its
    answer, then a question and its answer. The next turn's prompt leaves the
    unanswered question out, and the turn is stored whole."""
    store = Conversations(scripted_app.database)
    conversation = store.create_conversation("Damaged")
    store.add_message(conversation, "user", "What is the first question?")  # killed before its answer
    store.add_message(conversation, "user", "Where is Quimby?")
    store.add_message(conversation, "assistant", "On the river Lune.")
    scripted.reply("Every June.")
    answer = scripted_app.assistant().ask("And the festival?", conversation_id=conversation,
                                          options=GenerationOptions(max_new_tokens=16), use_documents=False)
    assert answer.conversation_id == conversation
    prompt = scripted.prompts[-1]
    assert "What is the first question?" not in prompt
    roles = [part.split("|>", 1)[0] for part in prompt.split("<|")[1:]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert "<|user|>\nWhere is Quimby?\n<|assistant|>\nOn the river Lune.\n<|user|>\nAnd the festival?" in prompt
    assert [(m.role, m.text) for m in store.messages(conversation)][-2:] == [
        ("user", "And the festival?"), ("assistant", "Every June.")]
    assert store.history(conversation)[-2:][0].content == "And the festival?"


def test_a_turn_is_stored_in_one_transaction(scripted_app) -> None:
    store = Conversations(scripted_app.database)
    conversation, reply = store.save_turn(None, "Question \udcff?", "Answer.", title="Question", model="m")
    assert [(m.role, m.text) for m in store.messages(conversation)] == [("user", "Question \ufffd?"),
                                                                        ("assistant", "Answer.")]
    assert store.messages(conversation)[1].id == reply and store.get_conversation(conversation).title == "Question"
    from archivist.store.conversations import ConversationNotFound

    with pytest.raises(ConversationNotFound):
        store.save_turn(9999, "Q", "A")
    assert len(store.list_conversations()) == 1
