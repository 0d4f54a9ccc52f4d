"""A team collection ranks near-identical documents as the local library does (issue #13):
each passage is keyword-indexed with its file's header, a question that names a document
by an identifier gets that document's passages first, ranked whole, and the two sides are
fused by score (archivist.fuse). The same documents as tests/retrieval/test_naming.py, on a
real PostgreSQL server with pgvector and the real encoder."""

from __future__ import annotations

from pathlib import Path

from near_identical import PROTOCOL, STRONG, SUB_STUDY, WEAK, report

from archivist_team import collection as team_collection


def test_a_question_naming_its_trial_gets_that_trials_passage_not_a_better_worded_one(
        make_collection, tmp_path: Path) -> None:
    docs = tmp_path / "protocols"
    docs.mkdir()
    for n in (11, 12, 13):  # three sub-studies, weakly worded
        (docs / f"NCT000000{n}_Prot.txt").write_text(SUB_STUDY + PROTOCOL + WEAK)
    for n in (14, 15, 16):  # other trials, whose sections say "sample size" more often
        (docs / f"NCT000000{n}_Prot.txt").write_text(PROTOCOL + STRONG)
    collection = make_collection()
    collection.sync([collection.add_source(docs)])
    question = "How was the sample size of study NCT00000011 calculated?"
    for mode in ("keyword", "hybrid", "dense"):
        top = collection.search(question, 1, mode=mode, min_similarity=0.0)[0]
        assert Path(top.path).name == "NCT00000011_Prot.txt", (mode, top.path)
    # A word that names more than two files (the three sub-studies) identifies nothing.
    top = collection.search("How was the sample size calculated in ISRCTN12345?", 1, mode="keyword")[0]
    assert "sample size calculation" in top.text.lower()
    top = collection.search("How was the sample size calculated?", 1, mode="keyword")[0]
    assert Path(top.path).name != "NCT00000011_Prot.txt"


def test_inside_the_named_report_the_page_that_answers_beats_the_title_page(
        make_collection, tmp_path: Path, monkeypatch) -> None:
    docs = tmp_path / "reports"
    docs.mkdir()
    (docs / "N5921D_report.txt").write_text(report("N5921D", "Piper PA-22-150", "Tallahassee", 1250))
    for reg, craft, place in (("N1234X", "Cessna 152", "Venice"), ("N77AB", "Beech Bonanza", "Madill")):
        (docs / f"{reg}_report.txt").write_text(report(reg, craft, place, 300))
    collection = make_collection()
    collection.sync([collection.add_source(docs)])
    question = "How many hours of flight time did the pilot of the Piper PA-22-150 N5921D that crashed at Tallahassee have?"
    top = collection.search(question, 1)[0]
    assert Path(top.path).name == "N5921D_report.txt" and "1250 hours" in top.text, top.text[:80]
    # Without ranking the named report whole its title block comes first.
    monkeypatch.setattr(team_collection, "WITHIN_MAX_PASSAGES", 0)
    top = collection.search(question, 1)[0]
    assert Path(top.path).name == "N5921D_report.txt" and "1250 hours" not in top.text, top.text[:80]


def test_a_passage_is_found_by_the_words_of_its_files_header(make_collection, tmp_path: Path) -> None:
    """Two quarterly notes say the same sentence; the company and quarter are only in each
    file's name and first line, which every passage is keyword-indexed with."""
    docs = tmp_path / "filings"
    docs.mkdir()
    body = ("\n\n" + "Sales were steady across the regions and the board approved the budget. " * 30
            + "\n\nRevenue grew by four percent against the previous quarter.\n")
    (docs / "acme_q3.txt").write_text("Acme Corporation, third quarter report" + body)
    (docs / "globex_q3.txt").write_text("Globex Limited, third quarter report" + body)
    collection = make_collection()
    collection.sync([collection.add_source(docs)])
    for company, name in (("Acme", "acme_q3.txt"), ("Globex", "globex_q3.txt")):
        [top] = collection.search(f"How much did revenue grow at {company}?", 1, mode="keyword")
        assert Path(top.path).name == name and "Revenue grew" in top.text and company not in top.text
    files = collection.conn.execute("SELECT meta FROM archivist_files ORDER BY path").fetchall()
    assert "Acme Corporation" in files[0][0] and "Globex Limited" in files[1][0]
