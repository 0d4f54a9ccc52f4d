"""A question that names its document by an identifier (a trial's number, a registration)
gets that document's passages first (archivist.identifiers, archivist_faiss.search). Real encoder, FAISS, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from near_identical import PROTOCOL, STRONG, SUB_STUDY, WEAK, report

from archivist import content_query, identifiers, named_first


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
    # The named file ranked whole by the library replaces its passages of the ranking.
    assert named_first(ranked, {1: 10, 2: 20, 3: 10, 4: 20}, {20}, [(7, 0.5), (4, 0.4)]) == \
        [(7, 0.5), (4, 0.4), (1, 0.9), (3, 0.7)]


def test_the_content_query_leaves_out_the_words_of_the_documents_name_and_header() -> None:
    header = "N5921D report | Aviation accident final report, Piper PA-22-150, Tallahassee, FL"
    assert content_query("How many hours had the pilot of the Piper N5921D at Tallahassee?", header).split() == \
        "How many hours had the pilot of the at ?".split()
    assert content_query("Pilot hours?", "") == "Pilot hours?"


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


def test_inside_the_named_report_the_page_that_answers_beats_the_title_page(tmp_path, make_index, monkeypatch) -> None:
    """The question's place and aircraft chose the report; inside it they would choose its
    title block, which repeats them, over the pilot's record that answers. The hybrid
    ranks the named report's passages without them on its keyword side (Search.within)."""
    from archivist_faiss import search

    docs = tmp_path / "reports"
    docs.mkdir()
    (docs / "N5921D_report.txt").write_text(report("N5921D", "Piper PA-22-150", "Tallahassee", 1250))
    for reg, craft, place in (("N1234X", "Cessna 152", "Venice"), ("N77AB", "Beech Bonanza", "Madill")):
        (docs / f"{reg}_report.txt").write_text(report(reg, craft, place, 300))
    ix = make_index(isolate=False)
    ix.index([docs])
    question = "How many hours of flight time did the pilot of the Piper PA-22-150 N5921D that crashed at Tallahassee have?"
    top = ix.search(question, k=1)[0]
    assert Path(top.path).name == "N5921D_report.txt" and "1250 hours" in top.text, top.text[:80]
    # Without ranking the named report whole (named files first, the fused order kept),
    # its title block comes first: what the change is for.
    monkeypatch.setattr(search, "WITHIN_MAX_PASSAGES", 0)
    top = ix.search(question, k=1)[0]
    assert Path(top.path).name == "N5921D_report.txt" and "1250 hours" not in top.text, top.text[:80]
    assert "N5921D" in top.text and "Tallahassee" in top.text
