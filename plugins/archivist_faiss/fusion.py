"""Keyword queries for FTS5, and the fusions :func:`archivist.fuse` (the one search uses,
public so that a team collection fuses the same way) is measured against: reciprocal
rank and normalised scores (``bench/retrieval.py --compare``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# Reciprocal rank fusion (:func:`rrf`) was the fusion until issue #13; chosen on XQuAD,
# where with k = 5 it beat both rankings (R@5 0.997 vs 0.976 dense and 0.989 keyword).
# On near-identical documents (bench/reports_questions.json) it fell below keyword search
# alone (R@1 0.49 vs 0.68 with passage headers): a weak dense ranking weighs as much as a
# strong keyword one, since ranks carry no confidence. Search now fuses scores
# (:func:`archivist.fuse`); rrf stays for the benchmark's comparison.
DENSE_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
RRF_K = 5
# BM25 weight of the keyword index's second column (file name, title, folders, dates and
# the passages' header, archivist.passage_meta) against the passage text's 1.0. 0.5 before issue #13;
# with the header's first lines in it, 1.0 finds the right report more often
# (reports: keyword R@1 0.68 -> 0.80) at a cost of a point on XQuAD.
META_WEIGHT = 1.0

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


Scored = Sequence[tuple[int, float]]


def normalized(scored: Scored, how: str) -> dict[int, float]:
    """A ranking's scores mapped to [0, 1]: ``minmax`` (best 1, worst 0) or ``dbsf``
    (mean ± 3 standard deviations of the list, clipped). A flat list (every score equal)
    says nothing about order and maps to 0."""
    if not scored:
        return {}
    values = np.array([s for _, s in scored], dtype=np.float64)
    if how == "minmax":
        low, high = float(values.min()), float(values.max())
    else:
        mean, std = float(values.mean()), float(values.std())
        low, high = mean - 3 * std, mean + 3 * std
    if high - low <= 1e-12:
        return {i: 0.0 for i, _ in scored}
    return {i: min(1.0, max(0.0, (s - low) / (high - low))) for i, s in scored}


def convex(rankings: Sequence[tuple[Scored, float]], how: str = "minmax") -> list[tuple[int, float]]:
    """Fuse scored rankings, each with its weight: score(id) = Σ w · normalized score."""
    scores: dict[int, float] = {}
    for scored, weight in rankings:
        for i, s in normalized(scored, how).items():
            scores[i] = scores.get(i, 0.0) + weight * s
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
