"""Stopping an answer where the model starts repeating itself. Qt-free.

Why: small models fall into loops. Asked to summarise a page of a report, the built-in
SmolLM2-135M wrote two or three faithful sentences, then the same sentence until its
token budget ran out ("The accident was ruled out as a result of a malfunction during
the roll-over." six times): 15-72% of the 4-word sequences of its notes on four report
pages were repeats. The loop costs the user the rest of the budget (about 10 s a note
on two cores), buries what was faithful, and in a summary read in parts it drowns the
words that tie a sentence to its page (:mod:`archivist.attribution`).

A repetition penalty does not do it here: onnxruntime-genai applies it to the prompt's
tokens too, so the model stops copying from its sources. Measured on the same four
pages (SmolLM2-135M, greedy): at 1.1 the loops were gone, but the share of the notes'
words found in their page fell from 0.56-0.93 to 0.14-0.43.

So the answer is cut instead: a sentence (as the output screen splits them) of at least
:data:`MIN_WORDS` words that was already written, or 70% of whose word triples
(:data:`SEEN_SHARE`) were (a loop with a word changed), ends the answer before it.
Counting words, not tokens or scores, gives the same cut on every CPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

MIN_WORDS = 4
SEEN_SHARE = 0.7
_WORD = re.compile(r"\w+", re.UNICODE)


class LoopGuard:
    """Remembers the sentences of one answer; :meth:`repeats` says when one loops."""

    def __init__(self) -> None:
        self._sentences: set[tuple[str, ...]] = set()
        self._triples: set[tuple[str, ...]] = set()

    def repeats(self, sentence: str) -> bool:
        """Whether ``sentence`` repeats what this answer already said (then it is not
        remembered: the answer ends before it)."""
        words = tuple(_WORD.findall(sentence.lower()))
        triples = {words[i:i + 3] for i in range(len(words) - 2)}
        if len(words) >= MIN_WORDS and (
                words in self._sentences
                or (len(triples) >= MIN_WORDS and len(triples & self._triples) >= SEEN_SHARE * len(triples))):
            return True
        self._sentences.add(words)
        self._triples |= triples
        return False


_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")


def sentences(chunks: Iterable[str]) -> Iterator[str]:
    """The text of ``chunks`` (a model's stream) cut after each sentence end or line
    break, each piece with the spaces before it; the rest when the stream ends."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while (m := _BOUNDARY.search(buffer)) is not None:
            yield buffer[:m.end()]
            buffer = buffer[m.end():]
    if buffer:
        yield buffer


def without_loop(chunks: Iterable[str]) -> tuple[str, bool]:
    """The text of ``chunks`` up to the first sentence that repeats an earlier one, and
    whether it was cut there. Stops reading ``chunks`` at the cut (the caller closes
    the model's stream, which ends generation)."""
    guard = LoopGuard()
    kept: list[str] = []
    for piece in sentences(chunks):
        if guard.repeats(piece):
            return "".join(kept), True
        kept.append(piece)
    return "".join(kept), False
