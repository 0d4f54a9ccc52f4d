"""A question that names its document by an identifier (a trial's number, a registration)
gets that document's passages first (archivist_faiss.naming). Real encoder, FAISS, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist_faiss.naming import content_query, identifiers, named_first

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


def _report(registration: str, aircraft: str, place: str, hours: int) -> str:
    title = (f"Aviation accident final report for {registration}, a {aircraft}, at {place}. "
             f"The {aircraft} {registration} was destroyed near {place}; the {aircraft} was registered to a "
             f"club at {place}, and the investigation of {registration} was carried out at {place}. "
             + " ".join(f"Record {n} of the {aircraft} {registration} at {place} is kept on file." for n in range(3))
             + " This report was prepared from the statements of the witnesses and from the examination of the "
               "wreckage by the investigators in charge.")
    pilot = (f"Pilot information. The pilot held a private certificate with an airplane single-engine land "
             f"rating and had logged {hours} hours of total flight time, of which 40 hours were in the last "
             "ninety days. The pilot's last flight review was completed eleven months before the accident, "
             "and the pilot held a third-class medical certificate with no limitations. The pilot reported "
             "no prior accidents or incidents, and the flight instructor who signed the review described "
             "the pilot as careful and well prepared for cross-country flights in good weather.")
    weather = ("Weather information. The nearest station reported wind from 270 degrees at 8 knots, visibility "
               "10 miles, a few clouds at 4,500 feet, temperature 12 degrees, dew point 3 degrees, and an "
               "altimeter setting of 30.05 inches of mercury. No significant weather was forecast for the "
               "area, and no notices to airmen affected the airport, its runways or its lighting that day.")
    return "\n\n".join((title, pilot, weather)) + "\n"


def test_inside_the_named_report_the_page_that_answers_beats_the_title_page(tmp_path, make_index, monkeypatch) -> None:
    """The question's place and aircraft chose the report; inside it they would choose its
    title block, which repeats them, over the pilot's record that answers. The hybrid
    ranks the named report's passages without them on its keyword side (Search.within)."""
    from archivist_faiss import search

    docs = tmp_path / "reports"
    docs.mkdir()
    (docs / "N5921D_report.txt").write_text(_report("N5921D", "Piper PA-22-150", "Tallahassee", 1250))
    for reg, craft, place in (("N1234X", "Cessna 152", "Venice"), ("N77AB", "Beech Bonanza", "Madill")):
        (docs / f"{reg}_report.txt").write_text(_report(reg, craft, place, 300))
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
