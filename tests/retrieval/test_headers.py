"""Contextual passage headers (issue #13): what tells near-identical documents apart is in
their names and first lines, so each passage's keyword row carries them; the encoder
embeds the passage alone, and a citation shows it without them. Real encoder, FAISS and
SQLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archivist import Document, DocumentPart, Locator, passage_header

BODY = ("Factual information\n\n" + "The pilot reported that the engine lost power during the climb after takeoff. "
        "He selected a field and landed, and the airplane struck a fence. " * 3 + "\n\n"
        "Weather\n\nThe wind was calm and the visibility was ten miles. The runway was dry.\n")


def report(folder: Path, name: str, place: str, aircraft: str) -> Path:
    path = folder / name
    path.write_text(f"Location: {place}. Aircraft: {aircraft}.\n\n" + "Summary of the flight.\n\n" * 40 + BODY)
    return path


def test_the_header_names_the_file_title_metadata_and_first_lines() -> None:
    doc = Document("/x/NCT0615_Prot_000.pdf", (DocumentPart("Study  Protocol ____________ Title: Knee pain\n",
                                                            Locator(page=1)),),
                   title="Knee study", metadata={"author": "Dr Lee"})
    assert passage_header("/x/NCT0615_Prot_000.pdf", doc) == "NCT0615 Prot 000 | Knee study | Dr Lee | Study Protocol Title: Knee pain"
    long = passage_header("/x/a.txt", Document("/x/a.txt", (DocumentPart("word " * 500, Locator()),)))
    assert long.startswith("a | word") and len(long) <= len("a | ") + 400  # the first page's first 400 characters


def test_near_identical_reports_are_told_apart_by_their_headers_and_cited_without_them(tmp_path, make_index,
                                                                                        embedder) -> None:
    from archivist_faiss.index import open_index

    docs = tmp_path / "reports"
    docs.mkdir()
    places = [("Tallahassee", "Piper PA-22"), ("Death Valley", "Beech A23"), ("Houston", "Cessna 172"),
              ("Wausau", "Cessna Skyhawk"), ("Belen", "Sorrell SNJ-7")]
    for n, (place, aircraft) in enumerate(places):
        report(docs, f"2008011{n}X0004{n}.txt", place, aircraft)
    plain = make_index(isolate=False, chunk_headers=False)
    plain.index([docs])
    headed = open_index(tmp_path / "headed", embedder=embedder, isolate=False)
    try:
        headed.index([docs])
        def right(hit, place: str) -> bool:  # the weather passage of that place's report
            return place in Path(hit.path).read_text().split("\n")[0] and "wind was calm" in hit.text

        def of(hit, place: str) -> bool:
            return place in Path(hit.path).read_text().split("\n")[0]

        found = plain_found = 0
        for place, _ in places:
            query = f"What was the weather at the {place} accident?"
            # Keyword: the header is in every passage's second column, so the report is found.
            assert of(headed.search(query, k=1, mode="keyword")[0], place), query
            # Hybrid: the weather passages are the same words in every report, so their
            # cosines tie and the words decide: "weather" in the passage, the place in its
            # header. Without headers the place is only in the report's first passage, so
            # any report's weather passage may come second.
            hits = headed.search(query, k=2)
            assert of(hits[0], place), query
            found += any(right(hit, place) for hit in hits)
            plain_found += any(right(hit, place) for hit in plain.search(query, k=2))
            for hit in hits:  # shown without its header
                assert hit.text in Path(hit.path).read_text() and " | " not in hit.text
        assert found == len(places) and plain_found <= 2, (found, plain_found)
        # The encoder embeds the passage alone (archivist.passage_headers says why): a stored vector is
        # its text's, within float tolerance, so the header costs indexing no time.
        with headed.Session() as s:
            from archivist_faiss.store import ChunkRow

            row = s.query(ChunkRow).filter(ChunkRow.text.contains("wind was calm")).first()
            stored = np.frombuffer(row.embedding, dtype=np.float32)
            assert np.allclose(stored, embedder.embed([row.text])[0], atol=1e-5)
    finally:
        headed.close()


def test_only_a_paged_documents_passages_on_its_first_lines_hold_its_lead() -> None:
    from archivist import holds_lead

    pages = (DocumentPart("", Locator(page=1)), DocumentPart("Title block " * 80, Locator(page=2, start=0)),
             DocumentPart("Body", Locator(page=3, start=960)))
    doc = Document("/x/r.pdf", pages)
    assert holds_lead(doc, Locator(page=2, start=0)) and holds_lead(doc, Locator(page=2, start=399))
    assert not holds_lead(doc, Locator(page=2, start=400)) and not holds_lead(doc, Locator(page=3, start=960))
    text_file = Document("/x/a.txt", (DocumentPart("First lines of an article.", Locator()),))
    assert not holds_lead(text_file, Locator(start=0)) and not holds_lead(None, Locator(page=1))
    assert passage_header("/x/r.pdf", doc, lead=False) == "r"
    assert passage_header("/x/r.pdf", doc).startswith("r | Title block")


def test_a_question_naming_its_report_finds_the_page_that_answers_not_the_title_page(tmp_path, make_index) -> None:
    """The title page holds the words a question names its report by; every passage's
    header carries them too, so the title page must not get them twice (headers.holds_lead)."""
    from pdfs import text_pdf

    docs = tmp_path / "reports"
    docs.mkdir()
    places = [("Tallahassee", "Piper PA-22"), ("Wausau", "Cessna Skyhawk"), ("Belen", "Sorrell SNJ-7"),
              ("Houston", "Beech A23"), ("Latrobe", "Vans RV-8")]
    for n, (place, aircraft) in enumerate(places):
        text_pdf(docs / f"2008011{n}X0004{n}.pdf", [
            ["National Transportation Safety Board", "Aviation Accident Final Report",
             f"Location: {place}   Aircraft: {aircraft}   Registration: N{5920 + n}D", "Flight conducted under: Part 91",
             f"The pilot of the {aircraft} was not injured near {place}."],
            ["Pilot Information", f"Total flight time: {1000 + n} hours, {200 + n} hours in this make.",
             "Medical certificate: class 3."],
            ["Weather", "The wind was calm and the visibility was ten miles."]])
    ix = make_index(isolate=False)
    ix.index([docs])
    for n, (place, aircraft) in enumerate(places):
        question = f"How many hours of flight time did the pilot of N{5920 + n}D, the {aircraft} at {place}, have?"
        # Keyword search (the words decide; the cosines of the hybrid still like the title
        # page, which says the place and aircraft twice: docs/documents.md).
        top = ix.search(question, k=1, mode="keyword")[0]
        assert f"X0004{n}" in top.path and f"Total flight time: {1000 + n}" in top.text, (question, top.text)
