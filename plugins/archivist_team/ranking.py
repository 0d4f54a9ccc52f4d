"""Keyword queries for PostgreSQL full-text search, and the fusion of two rankings.

The fusion is the local library's: weighted reciprocal rank with k = 5, so a first place
in either ranking dominates (chosen on XQuAD for the FAISS plugin, see its ``fusion.py``).
Keyword search uses the ``simple`` text-search configuration (words lower-cased, no
stemming, no language's stop-word list), with the same short English stop-word list
removed from queries as the local library removes, and ranks by BM25 (k1 = 1.2,
b = 0.75, as SQLite's FTS5 does for the local library; :data:`BM25_SQL`): PostgreSQL's
own ``ts_rank`` knows no inverse document frequency, and on XQuAD it found the answer's
passage in the top 5 for 96.9% of questions against 97.8% with BM25.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

DENSE_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
RRF_K = 5

# BM25 over the passages matching any query word: term frequencies and passage lengths
# (in words) from the tsvector's positions; the collection's size and mean length are
# parameters, read once a minute (:meth:`TeamCollection.keyword`).
BM25_SQL = """
WITH m AS (SELECT id, tsv FROM archivist_passages
           WHERE collection = %(collection)s AND tsv @@ to_tsquery('simple', %(query)s)),
     u AS (SELECT m.id, x.lexeme, coalesce(array_length(x.positions, 1), 1)::float8 AS tf,
                  (SELECT coalesce(sum(coalesce(array_length(y.positions, 1), 1)), 1)
                   FROM unnest(m.tsv) y)::float8 AS dl
           FROM m, unnest(m.tsv) x WHERE x.lexeme = ANY(%(terms)s)),
     df AS (SELECT lexeme, count(*)::float8 AS df FROM u GROUP BY lexeme)
SELECT u.id, sum(ln(1 + (greatest(%(n)s, df.df) - df.df + 0.5) / (df.df + 0.5))
                 * u.tf * 2.2 / (u.tf + 1.2 * (0.25 + 0.75 * u.dl / %(avgdl)s))) AS score
FROM u JOIN df USING (lexeme) GROUP BY u.id ORDER BY score DESC, u.id LIMIT %(limit)s
"""
STATS_SQL = """
SELECT count(*), coalesce(avg((SELECT sum(coalesce(array_length(y.positions, 1), 1)) FROM unnest(tsv) y)), 1)
FROM archivist_passages WHERE collection = %s
"""

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how i in is it its of on or "
    "that the their there these this to was were what when where which who whom whose why "
    "will with you your".split()
)


def terms(text: str, max_terms: int = 32) -> list[str]:
    """The query's words, lower-cased, without stop-words (all of them if that leaves none)."""
    words: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w not in STOPWORDS and w not in words:
            words.append(w)
    if not words:
        words = list(dict.fromkeys(_WORD.findall(text.lower())))
    return words[:max_terms]


def tsquery(text: str, max_terms: int = 32, joiner: str = "|") -> str | None:
    """A ``to_tsquery('simple', ...)`` expression: the query's words, quoted, joined by
    ``|`` (any of them) or ``&`` (all of them); None when the query has no words."""
    words = terms(text, max_terms)
    if not words:
        return None
    return f" {joiner} ".join("'" + w.replace("'", "''").replace("\\", "\\\\") + "'" for w in words)


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists, each with its weight: score(id) = Σ w / (k + rank)."""
    scores: dict[int, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, i in enumerate(ids, 1):
            scores[i] = scores.get(i, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
