"""Ordering a retrieval plugin's passages: fusing meaning and words, and the documents a
question names. Public (``archivist.fuse``, ``archivist.identifiers`` ...) so that every
library ranks the same way: the built-in one (SQLite and FAISS) and a team collection
(PostgreSQL) use these functions, and a third party's may.

**Fusion** (:func:`fuse`): ``share · cosine + (1 - share) · bm25 / best bm25``, the
cosine's share set per query from how far the two rankings agree (:func:`dense_share`).
Reciprocal-rank fusion was the fusion until issue #13; on near-identical documents
(bench/reports_questions.json) it fell below keyword search alone (R@1 0.49 vs 0.68 with
passage headers): a weak dense ranking weighs as much as a strong keyword one, since
ranks carry no confidence. The measurements are in docs/documents.md.

**Naming** (:func:`identifiers`, :func:`named_first`, :func:`content_query`): a person
who asks "How was the sample size of study NCT06152666 calculated?" or "Who investigated
the accident of N5921D?" has said which document they mean: a trial's number, an
aircraft's registration, an invoice's or a case's number, written in the file name or on
the title page. Among forty trial protocols, each with its own "sample size" section,
the words of the question otherwise pull in the other trials' sections (they say "sample
size" more often), and the cosine cannot read a number. So a word of the question made
of letters *and* digits (four characters or more; not an ordinal such as "19th", nor a
decade such as "1990s") that the keyword index finds in the name or header of at most
:data:`MAX_NAMED_FILES` files names those files, and their passages come first. Inside
them, the question's words that are in their name or header chose the document; they
would also choose its title page, which holds them all, over the page that answers, so
the keyword side leaves them out there (:func:`content_query`).

Everything here is arithmetic on ids and scores a library gives, in a fixed order (ties
by id), so the same rankings give the same order on every CPU. Qt-free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Scored = Sequence[tuple[int, float]]

# fuse(): the cosine's share of the fused score, set per query from how far the two
# rankings agree (dense_share): DENSE_SHARE_LOW when their top AGREEMENT_DEPTH passages
# have none in common, DENSE_SHARE when they are the same. A fixed 0.5 until the second
# round of issue #13 (bench/retrieval.py --compare, docs/documents.md): on the reports the
# agreement-set share lifted hybrid R@1 from 0.699 to 0.726 and left XQuAD as it was
# (R@1 0.930, R@5 0.992); lower floors gained a little more on the reports and lost on
# XQuAD. It never drops below the floor, so a weak side never counts for nothing.
DENSE_SHARE = 0.5
DENSE_SHARE_LOW = 0.4
AGREEMENT_DEPTH = 10

# Files a word may name and still identify them (a registration in two reports of the
# same aircraft; a trial's protocol and its statistical plan).
MAX_NAMED_FILES = 2

_IDENTIFIER = re.compile(r"(?<![\w-])(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9][a-z0-9-]{3,}(?![\w-])")
_NOT_AN_IDENTIFIER = re.compile(r"\d+(?:st|nd|rd|th|s)|\d+'?s")
_WORD = re.compile(r"\w+", re.UNICODE)


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
    """``dense`` (id, cosine) and ``keyword`` (id, BM25, higher is better) fused:
    ``share · cosine + (1 - share) · bm25 / best bm25``, with ``share`` given or set per
    query by :func:`dense_share`; best first, ties by id.

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


def identifiers(query: str) -> list[str]:
    """The words of ``query`` that look like identifiers, lower case, each once. A library
    looks them up in its files' names and headers; one found in at most
    :data:`MAX_NAMED_FILES` files names them."""
    words = [w.strip("-") for w in _IDENTIFIER.findall(query.lower())]
    return list(dict.fromkeys(w for w in words if len(w) >= 4 and not _NOT_AN_IDENTIFIER.fullmatch(w)))


def named_first(ranked: Scored, file_of: dict[int, int], named: set[int],
                inside: Scored | None = None) -> list[tuple[int, float]]:
    """``ranked`` with the passages of the ``named`` files first (``file_of``: passage id
    -> file id), the order kept within both groups; or, given ``inside`` (those files'
    passages ranked whole by the library, each with its own cosine), ``inside`` in
    place of their passages in ``ranked``."""
    if not named:
        return list(ranked)
    rest = [r for r in ranked if file_of.get(r[0]) not in named]
    if inside is not None:
        return list(inside) + rest
    return [r for r in ranked if file_of.get(r[0]) in named] + rest


def content_query(query: str, document_text: str) -> str:
    """``query`` without its words found in ``document_text`` (the named documents' name
    and header): what is left asks for a passage, not for a document. Case-insensitive
    whole words; the rest of the question is kept as it was written."""
    known = {w.lower() for w in _WORD.findall(document_text)}
    return _WORD.sub(lambda m: "" if m.group(0).lower() in known else m.group(0), query)
