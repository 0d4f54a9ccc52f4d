"""Which sources an answer's sentences repeat, for answers that cite none.

Why: a small local model often writes no ``[n]`` at all (the built-in 135M model
almost never does), and an answer listed with its first two sources "consulted" cannot
be checked sentence by sentence. Such models mostly copy: a sentence of the answer
holds most of the words of the page it came from. So each sentence of the answer is
matched, by its content words, to the source that holds the largest share of them; a
share of at least :data:`MIN_SHARE` of a sentence of at least :data:`MIN_WORDS` content
words makes that source (when no other holds as many) a *matched* source (shown apart from citations the model wrote,
as "matched by wording"). A sentence the model made up matches nothing, so no source is
claimed for it.

Words, not vectors: the match is exact string arithmetic, the same on every CPU, costs
microseconds, and says something a user can check by reading the two texts. Qt-free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A sentence this short ("Yes, it does.") says too little to be matched to a page.
MIN_WORDS = 4
# Share of a sentence's content words a source must hold. A sentence copied whole holds
# all of them; the built-in model's paraphrases of a pinned paper held 0.57-0.85 of
# theirs in the paper's page and 0-0.11 in the other file pinned beside it (18 sentences,
# three questions); its sentences that only named the file held 0.47-0.50.
MIN_SHARE = 0.6

_WORD = re.compile(r"[^\W_]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# A citation as models write it, "[2]" or "[1, 3]": source numbers, not words (the
# numbers are the group; archivist.prompt reads them with this pattern too).
CITATION = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
# Words every text has; they would make any two sentences look alike.
STOPWORDS = frozenset(
    """about above after again against all also and any are as at because been before being below between
    both but by can could did does doing down during each few for from further had has have having her here
    hers herself him himself his how however into its itself just more most must not now off once only other
    our ours out over own same she should some such than that the their theirs them then there these they
    this those through too under until very was were what when where which while who whom why will with
    would you your yours yourself one two also may might shall upon within without""".split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased words of three or more letters that are not stopwords, and every
    number (a figure is the most telling word a sentence can copy)."""
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text))
            if w.isdigit() or (len(w) >= 3 and w not in STOPWORDS)}


def sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE.split(text)) if s]


def matched_sources(answer: str, sources: Sequence[str], min_words: int = MIN_WORDS,
                    min_share: float = MIN_SHARE) -> list[int]:
    """The 1-based numbers of ``sources`` that sentences of ``answer`` repeat, in the
    order the answer first repeats them; each sentence is given to the one source holding
    the largest share of its content words, if that share is at least ``min_share`` and
    no other source holds as large a share."""
    words = [content_words(s) for s in sources]
    found: list[int] = []
    for sentence in sentences(CITATION.sub(" ", answer)):
        mine = content_words(sentence)
        if len(mine) < min_words:
            continue
        best, best_share, runner_up = 0, 0.0, 0.0
        for n, theirs in enumerate(words, 1):
            share = len(mine & theirs) / len(mine)
            if share > best_share:
                best, best_share, runner_up = n, share, best_share
            elif share > runner_up:
                runner_up = share
        # A sentence two sources hold equally (a template's boilerplate) says nothing
        # about where the answer came from.
        if best and best_share >= min_share and best_share > runner_up and best not in found:
            found.append(best)
    return found
