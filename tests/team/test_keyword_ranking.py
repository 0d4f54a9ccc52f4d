"""Keyword ranking on a real server: the bounded BM25 the plugin runs (ranking.bm25_sql)
ranks as the full BM25 (ranking.BM25_SQL) does, and keeps the passage holding the rare word.

Why: the bounded query scores fully only the best-covered few hundred passages of those
matching any query word. If the candidates were picked badly (by id, by how often a common
word occurs), the one passage holding the query's rare word, the one a keyword search is for,
would be dropped before BM25 saw it. The collection is built so that it would: many more
passages match than the bound, all holding the common words, and the rare one is written last.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from archivist import collect_loaders
from archivist_team import ranking, schema
from archivist_team.collection import TeamCollection

COMMON = 260  # passages holding the query's common words: more than the bound below
QUERY = "Which granite lighthouse did the island keeper log?"


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory, pg_server, team_encoder) -> Iterator[TeamCollection]:
    """A collection of COMMON passages about a lighthouse keeper, then one about granite."""
    from archivist_team.connection import connect

    folder = tmp_path_factory.mktemp("crowded")
    for i in range(COMMON):
        # Different lengths and repetitions, so term frequency and length normalisation matter.
        extra = " The keeper kept the lighthouse lamp lit." * (i % 4)
        (folder / f"log-{i:03d}.txt").write_text(
            f"Keeper number {i} of the lighthouse on the island logged weather{i}.{extra}\n", encoding="utf-8")
    (folder / "zz-quarry.txt").write_text(
        "The lighthouse on the island was built of granite from the quarry.\n", encoding="utf-8")
    database = pg_server.new_database()
    admin = connect(pg_server.url(database=database), None)
    try:
        schema.create_collection(admin, "crowded", "crowded_readers")
    finally:
        admin.close()
    pg_server.new_user("crowded_member", "pw", "crowded_readers")
    home = tmp_path_factory.mktemp("home")
    loaders = collect_loaders(home)
    collection = TeamCollection("crowded", pg_server.url("crowded_member", None, database), "pw",
                                encoder=team_encoder, loaders=lambda: loaders)
    collection.sync([collection.add_source(folder)])
    yield collection
    collection.close()


def _full_bm25(collection: TeamCollection, query: str, limit: int) -> list[tuple[int, float]]:
    passages, mean_length = collection._stats()
    params = ranking.bm25_params(query, collection.collection, passages, mean_length, limit)
    assert params is not None
    return [(int(i), float(s)) for i, s in collection.conn.execute(ranking.BM25_SQL, params).fetchall()]


def _bounded(collection: TeamCollection, query: str, limit: int, bound: int) -> list[tuple[int, float]]:
    passages, mean_length = collection._stats()
    params = ranking.bm25_params(query, collection.collection, passages, mean_length, limit, bound)
    assert params is not None
    sql = ranking.bm25_sql(len(ranking.terms(query)))
    return [(int(i), float(s)) for i, s in collection.conn.execute(sql, params).fetchall()]


def test_more_passages_match_than_the_bound(crowded: TeamCollection) -> None:
    # (else the bound would not be tested at all)
    assert crowded.count() == COMMON + 1 > ranking.candidates(20)


def test_the_rare_word_passage_comes_first(crowded: TeamCollection) -> None:
    [best, *_] = crowded.search(QUERY, 5, mode="keyword")
    assert "granite" in best.text
    # Even with a single candidate: coverage weighs each word by its IDF, so the passage
    # with the rare word covers the query best although it is the last one written.
    [(first, _)] = _bounded(crowded, QUERY, 1, bound=1)
    assert first == _full_bm25(crowded, QUERY, 1)[0][0]


@pytest.mark.parametrize("query", [QUERY, "lighthouse keeper lamp", "keeper weather17 lighthouse", "island lamp"])
def test_bounded_bm25_ranks_as_the_full_bm25(crowded: TeamCollection, query: str) -> None:
    limit = 20
    full = _full_bm25(crowded, query, limit)
    bounded = crowded.keyword(query, limit)
    assert len(full) == len(bounded) == limit
    # Same scores (to rounding), ranked by score then id, the same passages above the last
    # score (which of several passages tied at it fill the last places may differ: the
    # bounded query takes the lowest ids).
    assert [round(s, 9) for _, s in bounded] == [round(s, 9) for _, s in full]
    assert _ordered(bounded)
    assert _only_ties_differ(full, bounded)


def _ordered(ranked: list[tuple[int, float]]) -> bool:
    """Score descending (to 9 decimals), then id ascending."""
    return ranked == sorted(ranked, key=lambda r: (-round(r[1], 9), r[0]))


def _only_ties_differ(full: list[tuple[int, float]], bounded: list[tuple[int, float]]) -> bool:
    """The same passages score above the last place's score in both lists."""
    last = round(full[-1][1], 9)
    return {i for i, s in full if round(s, 9) > last} == {i for i, s in bounded if round(s, 9) > last}


def test_a_passage_holding_every_word_passes_the_similarity_threshold(crowded: TeamCollection) -> None:
    # Found by id among the fused results (not by a scan for every word, then cut short):
    # exactly the passages holding all the words pass a threshold no passage's meaning reaches.
    [quarry] = crowded.search("granite quarry", 5, min_similarity=0.999)
    assert "granite" in quarry.text and "quarry" in quarry.text
    [log] = crowded.search("keeper weather17", 5, min_similarity=0.999)
    assert "weather17" in log.text
    assert crowded.search("granite weather17", 5, min_similarity=0.999) == []
    assert crowded.holding_every_word("granite", []) == set()


def test_the_query_needs_words() -> None:
    with pytest.raises(ValueError, match="1 to 32 words"):
        ranking.bm25_sql(0)
    assert ranking.bm25_params("the of", "c", 10, 5.0, 5) is not None  # (stop-words alone are kept)
    assert ranking.bm25_params("?!", "c", 10, 5.0, 5) is None
