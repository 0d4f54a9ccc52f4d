"""Keyword queries for FTS5 and the weighted reciprocal-rank fusion of two rankings."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Chosen on XQuAD (bench/retrieval.py prints the whole grid). What decides whether the
# fusion beats both rankings is how steeply a rank's weight decays: with the textbook
# k = 60 every list's top 10 weighs about the same, so each ranking's misses dilute the
# other's hits and the fusion lands below keyword search alone (R@5 0.987 vs 0.988);
# with k = 5 a first place in either list dominates and the fusion beats both
# (R@5 0.994 vs 0.967 dense and 0.988 keyword with 200-token chunks, and likewise with
# 128-token chunks). Caveat: tuned on the same questions it is scored on.
DENSE_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
RRF_K = 5

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how i in is it its of on or "
    "that the their there these this to was were what when where which who whom whose why "
    "will with you your".split()
)


def fts_query(text: str, max_terms: int = 32, joiner: str = "OR") -> str | None:
    """An FTS5 MATCH expression: the query's words, each quoted, joined by OR (or AND)."""
    words = []
    seen = set()
    for w in _WORD.findall(text.lower()):
        if w in STOPWORDS or w in seen:
            continue
        seen.add(w)
        words.append(w)
    if not words:
        words = [w for w in _WORD.findall(text.lower())][:max_terms]
    if not words:
        return None
    return f" {joiner} ".join('"' + w.replace('"', '""') + '"' for w in words[:max_terms])


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists, each with its weight: score(id) = Σ w / (k + rank)."""
    scores: dict[int, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, i in enumerate(ids, 1):
            scores[i] = scores.get(i, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
