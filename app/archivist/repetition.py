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
(:data:`SEEN_SHARE`) were (a loop with a word changed), ends the answer before it; a
phrase written three times in a row ends it after the first copy (a loop that never
ends its sentence: the demo of ``scripts/try.sh`` got "... to prevent the creation of a
buffer that can be used to create a buffer that can be used to create a buffer ...").
Counting words, not tokens or scores, gives the same cut on every CPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from archivist.screening import sentence_end

MIN_WORDS = 4
SEEN_SHARE = 0.7
# A phrase of 3 to 40 words written three times in a row is a loop inside a sentence.
MIN_UNIT = 3
MAX_UNIT = 40
_WORD = re.compile(r"\w+", re.UNICODE)


class LoopGuard:
    """Remembers the sentences of one answer; :meth:`loop_start` says where one loops."""

    def __init__(self) -> None:
        self._sentences: set[tuple[str, ...]] = set()
        self._triples: set[tuple[str, ...]] = set()
        self._tail: list[str] = []  # the answer's last words, for a loop inside a sentence

    def loop_start(self, piece: str) -> int | None:
        """Where in ``piece`` (the answer's next sentence) the model began repeating
        itself, or None: 0 when the whole sentence is a repeat (said before, or 70% of
        its word triples were), else the start of a phrase's second copy where the same
        phrase of :data:`MIN_UNIT` words or more runs three times in a row ("a buffer
        that can be used to create a buffer that can be used to create a buffer ..."),
        which a model in a loop writes without ever ending the sentence."""
        spans = [(m.start(), m.group().lower()) for m in _WORD.finditer(piece)]
        words = tuple(w for _, w in spans)
        triples = {words[i:i + 3] for i in range(len(words) - 2)}
        if len(words) >= MIN_WORDS and (
                words in self._sentences
                or (len(triples) >= MIN_WORDS and len(triples & self._triples) >= SEEN_SHARE * len(triples))):
            return 0
        second = _second_copy(self._tail + list(words), len(self._tail))
        if second is not None:
            at = second - len(self._tail)
            return spans[at][0] if at > 0 else 0
        self._sentences.add(words)
        self._triples |= triples
        self._tail = (self._tail + list(words))[-3 * MAX_UNIT:]
        return None


def _second_copy(words: list[str], old: int = 0) -> int | None:
    """The index where the second of three copies in a row of one phrase begins, for
    the first such run in ``words`` that ends past its first ``old`` words (those were
    checked before), or None."""
    n = len(words)
    for unit in range(MIN_UNIT, min(MAX_UNIT, n // 3) + 1):
        for start in range(max(0, old - 3 * unit + 1), n - 3 * unit + 1):
            if words[start:start + unit] == words[start + unit:start + 2 * unit] == \
                    words[start + 2 * unit:start + 3 * unit]:
                return start + unit
    return None


def sentences(chunks: Iterable[str]) -> Iterator[str]:
    """The text of ``chunks`` (a model's stream) cut into sentences as the output screen
    cuts them (:func:`archivist.screening.sentence_end`), each with the spaces before it;
    the rest when the stream ends."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while (cut := sentence_end(buffer)) is not None:
            yield buffer[:cut]
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def without_loop(chunks: Iterable[str]) -> tuple[str, bool]:
    """The text of ``chunks`` up to the first sentence that repeats an earlier one, and
    whether it was cut there. Stops reading ``chunks`` at the cut (the caller closes
    the model's stream, which ends generation)."""
    guard = LoopGuard()
    kept: list[str] = []
    for piece in sentences(chunks):
        cut = guard.loop_start(piece)
        if cut is not None:
            return ("".join(kept) + piece[:cut]).rstrip(), True
        kept.append(piece)
    return "".join(kept), False
