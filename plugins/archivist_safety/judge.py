"""The optional stricter stage: the loaded chat model judges what the head is unsure of.

Off by default (``[safety] judge = true`` turns it on). The learned head is fast but
shallow: it reads words, not intent, and the texts it scores near its threshold are
where it errs most. A Phi-3-class model reads intent far better, but takes a few hundred
milliseconds to seconds a call, so it is asked only inside a band around the threshold;
outside the band the head's verdict stands. The model answers through
:meth:`archivist.PluginContext.ask_model`, between two tokens of the answer it is
writing when the output is screened. When it cannot answer (no model loaded yet, a
timeout, a reply that is neither "safe" nor "unsafe"), the head decides as if the judge
were off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from archivist import ChatMessage, Stage

log = logging.getLogger(__name__)

# What the judge is shown the text as, per stage.
WHAT = {
    Stage.INPUT: "user's message to an assistant",
    Stage.PASSAGE: "passage from the user's documents",
    Stage.OUTPUT: "sentence from an assistant's answer",
}

SYSTEM = "You check text for a desktop assistant's safety filter. Reply with one word: unsafe or safe."

QUESTION = (
    "Is this {what} unsafe? Unsafe means: hateful or harassing, sexual, violent or threatening, "
    "encouraging self-harm, or helping with weapons, drugs, malware or crime. Text that only "
    "sounds dangerous is safe (how to kill a Python process, how to shoot a photo at night).\n\n"
    '{what_cap}: """{text}"""\n\nOne word, unsafe or safe:'
)

# The first verdict word in the reply; "unsafe" and "not safe" before "safe".
_VERDICT = re.compile(r"\b(unsafe|not safe|safe|harmful|harmless|yes|no)\b")
_UNSAFE = {"unsafe", "not safe", "harmful", "yes"}

Ask = Callable[..., "str | None"]
# What the filter calls: (text, stage) -> True unsafe, False safe, None no verdict.
Judge = Callable[[str, Stage], "bool | None"]


def judge_messages(text: str, stage: Stage) -> list[ChatMessage]:
    what = WHAT[Stage(stage)]
    return [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", QUESTION.format(what=what, what_cap=what[0].upper() + what[1:], text=text)),
    ]


def read_judgement(reply: str | None) -> bool | None:
    """True for unsafe, False for safe, None when the reply says neither."""
    if not reply:
        return None
    found = _VERDICT.search(reply.lower())
    if found is None:
        return None
    return found.group(1) in _UNSAFE


class ModelJudge:
    """Asks the chat model whether ``text`` is unsafe; counts what it was asked and answered."""

    def __init__(self, ask: Ask, timeout_s: float = 2.0, load: bool = False) -> None:
        self.ask = ask
        self.timeout_s = timeout_s
        self.load = load  # the CLI's --judge loads the model; a chat screen never does
        self.asked = 0
        self.answered = 0

    def __call__(self, text: str, stage: Stage) -> bool | None:
        self.asked += 1
        reply = self.ask(judge_messages(text, stage), max_new_tokens=4, timeout_s=self.timeout_s, load=self.load)
        verdict = read_judgement(reply)
        if verdict is None:
            if reply is not None:
                log.info("safety judge: unreadable reply %r; the learned head decides", reply)
            return None
        self.answered += 1
        return verdict
