"""Questions that name their document by an identifier: those documents come first.

A person who asks "How was the sample size of study NCT06152666 calculated?" or "Who
investigated the accident of N5921D?" has said which document they mean: a trial's
number, an aircraft's registration, an invoice's or a case's number, written in the
file name or on the title page. Among forty trial protocols, each with its own
"sample size" section, the words of the question otherwise pull in the other trials'
sections (they say "sample size" more often), and the cosine cannot read a number.

So a word of the question made of letters *and* digits (four characters or more; not
an ordinal such as "19th", nor a decade such as "1990s") that the keyword index finds
in the name or header (the ``meta`` column, :mod:`records`) of at most
:data:`MAX_NAMED_FILES` files names those files, and their passages are put first, each
ranking's own order kept inside both groups. A word found in more files identifies
nothing, and a question without such a word is left as it is.

Measured (`bench/retrieval.py --compare`, docs/documents.md): on the near-identical
reports, where 77 of 113 questions carry such a word, keyword R@1 0.858 -> 0.912 and R@5
0.973 -> 0.991, hybrid 0.823 -> 0.894 and 0.973 -> 0.991; on XQuAD, 2 of 1,190
questions carry one and one of them moved (-0.1 point).

Inside the named documents the hybrid search ranks every passage of theirs, not only
those the collection-wide rankings found, and its keyword side leaves out the words of
the question that are in the documents' name or header (:func:`content_query`): those
words chose the document; inside it they would choose its title page, which holds them
all, over the page that answers. The cosine still reads the whole question. This took
the reports' hybrid R@1 from 0.894 to 0.938 (:meth:`Search.within
<archivist_faiss.search.Search.within>`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Files a word may name and still identify them (a registration in two reports of the
# same aircraft; a trial's protocol and its statistical plan).
MAX_NAMED_FILES = 2

_IDENTIFIER = re.compile(r"(?<![\w-])(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9][a-z0-9-]{3,}(?![\w-])")
_NOT_AN_IDENTIFIER = re.compile(r"\d+(?:st|nd|rd|th|s)|\d+'?s")
_WORD = re.compile(r"\w+", re.UNICODE)


def identifiers(query: str) -> list[str]:
    """The words of ``query`` that look like identifiers, lower case, each once."""
    words = [w.strip("-") for w in _IDENTIFIER.findall(query.lower())]
    return list(dict.fromkeys(w for w in words if len(w) >= 4 and not _NOT_AN_IDENTIFIER.fullmatch(w)))


def named_first(ranked: Sequence[tuple[int, float]], file_of: dict[int, int],
                named: set[int]) -> list[tuple[int, float]]:
    """``ranked`` with the passages of the ``named`` files first (``file_of``: passage id
    -> file id), the order kept within both groups."""
    if not named:
        return list(ranked)
    mine = [r for r in ranked if file_of.get(r[0]) in named]
    return mine + [r for r in ranked if file_of.get(r[0]) not in named]


def content_query(query: str, document_text: str) -> str:
    """``query`` without its words found in ``document_text`` (the named documents' name
    and header): what is left asks for a passage, not for a document. Case-insensitive
    whole words; the rest of the question is kept as it was written."""
    known = {w.lower() for w in _WORD.findall(document_text)}
    return _WORD.sub(lambda m: "" if m.group(0).lower() in known else m.group(0), query)
