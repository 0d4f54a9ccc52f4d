"""The fusion search uses (issue #13): a weak side must not drown a strong one."""

from __future__ import annotations

from archivist_faiss import fusion


def test_a_flat_dense_ranking_does_not_reorder_what_the_words_found() -> None:
    # Near-identical passages: cosines within 0.01 of each other, in an order of their own.
    dense = [(1, 0.612), (2, 0.611), (3, 0.608), (4, 0.605), (5, 0.603)]
    keyword = [(5, 12.0), (4, 6.0), (3, 5.5)]
    assert [i for i, _ in fusion.fuse(dense, keyword)][:3] == [5, 4, 3]
    # min-max normalisation would stretch the flat list over 0..1 and let it decide
    assert fusion.convex([(dense, 0.5), (keyword, 0.5)], "minmax")[0][0] != 5


def test_a_strong_dense_ranking_still_counts() -> None:
    dense = [(1, 0.82), (2, 0.41), (3, 0.38)]
    keyword = [(2, 9.0), (1, 8.0)]
    assert fusion.fuse(dense, keyword)[0][0] == 1


def test_one_side_empty_leaves_the_other_as_it_is() -> None:
    dense = [(7, 0.7), (3, 0.6), (9, 0.5)]
    assert [i for i, _ in fusion.fuse(dense, [])] == [7, 3, 9]
    assert [i for i, _ in fusion.fuse([], [(4, 3.0), (2, 1.0)])] == [4, 2]
    # a passage found by its words only counts as at most as similar as the least similar found by meaning
    fused = dict(fusion.fuse(dense, [(8, 5.0)]))
    assert fused[8] == 0.5 * 0.5 + 0.5 * 1.0
