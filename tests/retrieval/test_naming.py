"""A question that names its document by an identifier (a trial's number, a registration)
gets that document's passages first (archivist_faiss.naming). Real encoder, FAISS, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist_faiss.naming import identifiers, named_first

PROTOCOL = ("Study protocol\n\nThis randomised trial compares two dressings for wounds after surgery in "
            "adults at one hospital.\n\n")
SUB_STUDY = "Study protocol, a sub-study of ISRCTN12345\n\n"
WEAK = "Participants\n\nForty participants will be enrolled, as the available clinic time allows.\n"
STRONG = ("Sample size calculation\n\nThe sample size was calculated with a power of 80% and an alpha of 0.05: "
          "the sample size calculation gives 64 participants per group.\n")


@pytest.mark.parametrize("query,words", [
    ("How was the sample size of study NCT06152666 calculated?", ["nct06152666"]),
    ("Who investigated the accident of N5921D, the Piper PA-22-150?", ["n5921d", "pa-22-150"]),
    ("What happened in the 19th century, the 1990s and the 1850s?", []),
    ("Is COVID-19 worse than flu?", ["covid-19"]),
])
def test_words_of_letters_and_digits_are_identifiers_and_ordinals_and_decades_are_not(query, words) -> None:
    assert identifiers(query) == words


def test_named_files_come_first_in_the_order_they_were_ranked() -> None:
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert named_first(ranked, {1: 10, 2: 20, 3: 10, 4: 20}, {20}) == [(2, 0.8), (4, 0.6), (1, 0.9), (3, 0.7)]
    assert named_first(ranked, {1: 10}, set()) == ranked


def test_a_question_naming_its_trial_gets_that_trials_passage_not_a_better_worded_one(tmp_path, make_index) -> None:
    docs = tmp_path / "protocols"
    docs.mkdir()
    (docs / "NCT00000011_Prot.txt").write_text(SUB_STUDY + PROTOCOL + WEAK)
    for n in (12, 13):  # two more sub-studies, as weakly worded
        (docs / f"NCT000000{n}_Prot.txt").write_text(SUB_STUDY + PROTOCOL + WEAK)
    for n in (14, 15, 16):  # other trials, whose sections say "sample size" more often
        (docs / f"NCT000000{n}_Prot.txt").write_text(PROTOCOL + STRONG)
    ix = make_index(isolate=False)
    ix.index([docs])
    question = "How was the sample size of study NCT00000011 calculated?"
    for mode in ("keyword", "hybrid", "dense"):
        top = ix.search(question, k=1, mode=mode)[0]
        assert Path(top.path).name == "NCT00000011_Prot.txt", (mode, top.path)
    # A word that names more than two files (the three sub-studies) identifies nothing:
    # the best-worded passage wins.
    top = ix.search("How was the sample size calculated in ISRCTN12345?", k=1, mode="keyword")[0]
    assert "sample size calculation" in top.text.lower()
    # Without the identifier the words decide, as before.
    top = ix.search("How was the sample size calculated?", k=1, mode="keyword")[0]
    assert Path(top.path).name != "NCT00000011_Prot.txt"
