"""The fusion search uses (issue #13): a weak side must not drown a strong one."""

from __future__ import annotations

from archivist import ranking
from archivist_faiss import fusion


def test_a_flat_dense_ranking_does_not_reorder_what_the_words_found() -> None:
    # Near-identical passages: cosines within 0.01 of each other, in an order of their own.
    dense = [(1, 0.612), (2, 0.611), (3, 0.608), (4, 0.605), (5, 0.603)]
    keyword = [(5, 12.0), (4, 6.0), (3, 5.5)]
    assert [i for i, _ in ranking.fuse(dense, keyword)][:3] == [5, 4, 3]
    # min-max normalisation would stretch the flat list over 0..1 and let it decide
    assert fusion.convex([(dense, 0.5), (keyword, 0.5)], "minmax")[0][0] != 5


def test_a_strong_dense_ranking_still_counts() -> None:
    dense = [(1, 0.82), (2, 0.41), (3, 0.38)]
    keyword = [(2, 9.0), (1, 8.0)]
    assert ranking.fuse(dense, keyword)[0][0] == 1


def test_one_side_empty_leaves_the_other_as_it_is() -> None:
    dense = [(7, 0.7), (3, 0.6), (9, 0.5)]
    assert [i for i, _ in ranking.fuse(dense, [])] == [7, 3, 9]
    assert [i for i, _ in ranking.fuse([], [(4, 3.0), (2, 1.0)])] == [4, 2]
    # a passage found by its words only counts as at most as similar as the least similar found by meaning
    fused = dict(ranking.fuse(dense, [(8, 5.0)], share=0.5))
    assert fused[8] == 0.5 * 0.5 + 0.5 * 1.0


def test_the_cosine_counts_less_when_the_two_sides_disagree() -> None:
    """The share is set per query from the overlap of the two top tens (never below 0.4:
    a weak side is heard less, not silenced)."""
    dense = [(i, 0.9 - 0.01 * i) for i in range(1, 11)]
    assert ranking.dense_share(dense, [(i, 10.0 - i) for i in range(1, 11)]) == ranking.DENSE_SHARE
    assert ranking.dense_share(dense, [(i, 10.0 - i) for i in range(20, 30)]) == ranking.DENSE_SHARE_LOW
    assert ranking.DENSE_SHARE_LOW < ranking.dense_share(dense, [(1, 3.0), (2, 2.0), (40, 1.0)]) < ranking.DENSE_SHARE


def _cases() -> list[dict]:
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "fixtures" / "fusion_cases.json").read_text("utf-8"))
    return list(data["cases"])


def test_the_fusion_ranks_committed_cases_the_same_whatever_order_they_come_in() -> None:
    """Real scored lists (6 report and 6 XQuAD questions, tests/retrieval/fixtures) fuse to
    the committed order, and shuffling the inputs changes nothing: equal scores are ordered
    by passage id, never by the order a list or a set happened to give."""
    import random

    rng = random.Random(13)
    for case in _cases():
        dense = [(int(i), float(s)) for i, s in case["dense"]]
        keyword = [(int(i), float(s)) for i, s in case["keyword"]]
        assert [i for i, _ in ranking.fuse(dense, keyword)][:10] == case["fused_top10"], case["question"]
        for _ in range(3):
            d, k = dense[:], keyword[:]
            rng.shuffle(d)
            rng.shuffle(k)
            assert [i for i, _ in ranking.fuse(d, k)][:10] == case["fused_top10"]


def test_equal_fused_scores_are_ordered_by_passage_id() -> None:
    dense = [(9, 0.5), (4, 0.5), (6, 0.5)]
    keyword = [(6, 2.0), (9, 2.0), (4, 2.0)]
    assert [i for i, _ in ranking.fuse(dense, keyword)] == [4, 6, 9]
