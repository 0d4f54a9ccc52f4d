"""Keyword queries for PostgreSQL full-text search: the words of a question, and BM25.

Keyword search uses the ``simple`` text-search configuration (words lower-cased, no
stemming, no language's stop-word list), with the same short English stop-word list
removed from queries as the local library removes, and ranks by BM25 (k1 = 1.2,
b = 0.75, as SQLite's FTS5 does for the local library; :data:`BM25_SQL`, run over a
bounded set of candidates by :func:`bm25_sql`): PostgreSQL's
own ``ts_rank`` knows no inverse document frequency, and on XQuAD it found the answer's
passage in the top 5 for 96.9% of questions against 97.8% with BM25. A passage's
``tsv`` holds its text and its file's header (schema version 3), as the local index's
two columns of weight 1.0 do. The fusion with the dense side is the local library's,
:func:`archivist.fuse`: reciprocal rank (k = 5), this plugin's fusion before, fell below
keyword search alone on near-identical reports (docs/team.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

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
# The bounded BM25 (:func:`bm25_sql`), the one the plugin runs. At a million real-text
# passages an OR of a question's words matches ~23,000 of them, and unnesting each one's
# tsvector (BM25_SQL) took 3 s. Here one pass over the matches evaluates only ``@@`` per
# query word (C code, no unnest): each word's document frequency, hence its IDF, exactly as
# BM25_SQL counts it, and each passage's IDF-weighted coverage (the sum of the IDFs of the
# words it holds). BM25 proper (term frequencies, length normalisation) is then computed
# only for the CANDIDATES best-covered passages (ties by id, so the set is deterministic):
# their scores are BM25_SQL's. A passage left out covers the query less than every candidate,
# and a word's BM25 share lies between about 0.5 and 2.2 times its IDF, so it outranks the
# top results only when far shorter or far more repetitive than they are (docs/team.md,
# "keyword search": the same top 10 as BM25_SQL for 99 of 100 questions at a million).
# Scores are summed in lexeme order and ranked to 9 decimals, ties by id, so equal texts
# rank the same on every run. With ``files`` only their passages are candidates; the
# words' document frequencies are still counted over the whole collection, as FTS5 counts
# them when the local library searches inside named files.
CANDIDATES = 200
CANDIDATES_PER_RESULT = 8
_BOUNDED_BM25 = """
WITH q AS (SELECT {queries}),
     m AS MATERIALIZED (SELECT p.id, p.file_id, {hits} FROM archivist_passages p, q
           WHERE p.collection = %(collection)s AND p.tsv @@ to_tsquery('simple', %(query)s)),
     d AS (SELECT {dfs} FROM m),
     w AS (SELECT {idfs} FROM d),
     c AS (SELECT m.id FROM m, w WHERE %(files)s::bigint[] IS NULL OR m.file_id = ANY(%(files)s::bigint[])
           ORDER BY {coverage} DESC, m.id LIMIT %(candidates)s),
     t AS (SELECT DISTINCT x.lexeme, x.idf FROM w, unnest(%(terms)s::text[], ARRAY[{weights}]) AS x(lexeme, idf)),
     u AS (SELECT p.id, x.lexeme, coalesce(array_length(x.positions, 1), 1)::float8 AS tf,
                  (SELECT coalesce(sum(coalesce(array_length(y.positions, 1), 1)), 1)
                   FROM unnest(p.tsv) y)::float8 AS dl
           FROM archivist_passages p JOIN c USING (id), unnest(p.tsv) x
           WHERE p.collection = %(collection)s AND x.lexeme = ANY(%(terms)s))
SELECT id, score FROM (
    SELECT u.id, sum(t.idf * u.tf * 2.2 / (u.tf + 1.2 * (0.25 + 0.75 * u.dl / %(avgdl)s)) ORDER BY u.lexeme) AS score
    FROM u JOIN t USING (lexeme) GROUP BY u.id) s
ORDER BY round(score::numeric, 9) DESC, id LIMIT %(limit)s
"""


def candidates(limit: int) -> int:
    """How many best-covered passages the bounded BM25 scores fully for ``limit`` results."""
    return max(CANDIDATES, CANDIDATES_PER_RESULT * limit)


@lru_cache(maxsize=64)
def bm25_sql(words: int) -> str:
    """The bounded BM25 query for ``words`` query words (1 to 32), whose parameters are those
    of :data:`BM25_SQL` plus ``q0`` ... (each word as :func:`tsquery` quotes it, see
    :func:`bm25_params`) and ``candidates``."""
    if not 1 <= words <= 32:
        raise ValueError(f"a keyword query has 1 to 32 words, not {words}")
    r = range(words)
    return _BOUNDED_BM25.format(
        queries=", ".join(f"to_tsquery('simple', %(q{i})s) AS q{i}" for i in r),
        hits=", ".join(f"p.tsv @@ q.q{i} AS h{i}" for i in r),
        dfs=", ".join(f"count(*) FILTER (WHERE h{i})::float8 AS d{i}" for i in r),
        idfs=", ".join(f"ln(1 + (greatest(%(n)s, d{i}) - d{i} + 0.5) / (d{i} + 0.5)) AS w{i}" for i in r),
        coverage="(" + " + ".join(f"CASE WHEN m.h{i} THEN w.w{i} ELSE 0 END" for i in r) + ")",
        weights=", ".join(f"w.w{i}" for i in r))


def bm25_params(text: str, collection: str, passages: float, mean_length: float, limit: int,
                bound: int | None = None, files: Sequence[int] | None = None) -> dict[str, object] | None:
    """The parameters of ``bm25_sql(len(terms(text)))`` (None when the query has no words);
    ``bound`` the candidates scored fully (default :func:`candidates` of ``limit``);
    ``files`` the files whose passages alone are ranked (None: all)."""
    words = terms(text)
    if not words:
        return None
    params: dict[str, object] = {
        "collection": collection, "query": tsquery(text), "terms": words, "n": float(passages),
        "avgdl": float(mean_length), "limit": limit, "candidates": candidates(limit) if bound is None else bound,
        "files": None if files is None else [int(f) for f in files]}
    params.update({f"q{i}": _quoted(w) for i, w in enumerate(words)})
    return params


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
    return f" {joiner} ".join(_quoted(w) for w in words)


def _quoted(word: str) -> str:
    """``word`` as one quoted operand of a ``to_tsquery`` expression."""
    return "'" + word.replace("'", "''").replace("\\", "\\\\") + "'"
