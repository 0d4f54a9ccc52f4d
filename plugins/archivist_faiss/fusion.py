"""Keyword queries for FTS5, and fusing the dense and keyword rankings (:func:`fuse`; the
reciprocal-rank and normalised-score fusions it is measured against are here too)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# Reciprocal rank fusion (:func:`rrf`) was the fusion until issue #13; chosen on XQuAD,
# where with k = 5 it beat both rankings (R@5 0.997 vs 0.976 dense and 0.989 keyword).
# On near-identical documents (bench/reports_questions.json) it fell below keyword search
# alone (R@1 0.49 vs 0.68 with passage headers): a weak dense ranking weighs as much as a
# strong keyword one, since ranks carry no confidence. Search now fuses scores
# (:func:`fuse`); rrf stays for the benchmark's comparison.
DENSE_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
RRF_K = 5
# fuse(): the cosine's share of the fused score, set per query from how far the two
# rankings agree (:func:`dense_share`): DENSE_SHARE_LOW when their top AGREEMENT_DEPTH
# passages have none in common, DENSE_SHARE when they are the same. A fixed 0.5 until the
# second round of issue #13 (bench/retrieval.py --compare, docs/documents.md): on the
# reports the agreement-set share lifted hybrid R@1 from 0.699 to 0.726 and left XQuAD
# as it was (R@1 0.930, R@5 0.992); lower floors gained a little more on the reports and
# lost on XQuAD. It never drops below the floor, so a weak side never counts for nothing.
DENSE_SHARE = 0.5
DENSE_SHARE_LOW = 0.4
AGREEMENT_DEPTH = 10
# BM25 weight of the keyword index's second column (file name, title, folders, dates and
# the passages' header, headers.py) against the passage text's 1.0. 0.5 before issue #13;
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


def dense_share(dense: Scored, keyword: Scored) -> float:
    """The cosine's share for one query: between :data:`DENSE_SHARE_LOW` and
    :data:`DENSE_SHARE`, by the share of passages the two top :data:`AGREEMENT_DEPTH` have
    in common. When meaning and words point at different passages (near-identical forms,
    where the encoder likes the first page of every report), the words count a little
    more. A count of ids, so it is the same on every CPU."""
    top_dense = {i for i, _ in sorted(dense, key=lambda kv: (-kv[1], kv[0]))[:AGREEMENT_DEPTH]}
    top_words = {i for i, _ in sorted(keyword, key=lambda kv: (-kv[1], kv[0]))[:AGREEMENT_DEPTH]}
    agreement = len(top_dense & top_words) / AGREEMENT_DEPTH
    return DENSE_SHARE_LOW + (DENSE_SHARE - DENSE_SHARE_LOW) * agreement


def fuse(dense: Scored, keyword: Scored, share: float | None = None) -> list[tuple[int, float]]:
    """The fusion search uses: ``share · cosine + (1 - share) · bm25 / best bm25``, with
    ``share`` given or set per query by :func:`dense_share`.

    Cosines are on a scale of their own (a passage that means what the query means
    scores high whatever else is in the list), so they are used as they are: when the
    dense ranking is weak, its cosines are nearly equal, and they add nearly the same to
    every candidate instead of reordering what the words found. Min-max normalising them
    would stretch that flat list over 0..1 and let noise decide (it measured worse, see
    ``bench/retrieval.py --compare``). BM25 has no scale, so it is divided by the best
    score of the query: ratios are kept, a query whose words match nothing leaves the
    dense order alone. A passage found by words only gets the lowest cosine of the dense
    list (it was not in it, so it is at most that similar)."""
    if share is None:
        share = dense_share(dense, keyword)
    cosine = dict(dense)
    floor = min(cosine.values()) if cosine else 0.0
    best = max((s for _, s in keyword), default=0.0)
    words = {i: s / best for i, s in keyword} if best > 0 else {}
    scores = {i: share * cosine.get(i, floor) + (1 - share) * words.get(i, 0.0)
              for i in cosine.keys() | words.keys()}
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
