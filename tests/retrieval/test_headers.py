"""Contextual passage headers (issue #13): what tells near-identical documents apart is in
their names and first lines, so each passage's keyword row carries them; the encoder
embeds the passage alone, and a citation shows it without them. Real encoder, FAISS and
SQLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archivist import Document, DocumentPart, Locator
from archivist_faiss.headers import header_text

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
    assert header_text("/x/NCT0615_Prot_000.pdf", doc) == "NCT0615 Prot 000 | Knee study | Dr Lee | Study Protocol Title: Knee pain"
    long = header_text("/x/a.txt", Document("/x/a.txt", (DocumentPart("word " * 500, Locator()),)))
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
        # The encoder embeds the passage alone (headers.py says why): a stored vector is
        # its text's, within float tolerance, so the header costs indexing no time.
        with headed.Session() as s:
            from archivist_faiss.store import ChunkRow

            row = s.query(ChunkRow).filter(ChunkRow.text.contains("wind was calm")).first()
            stored = np.frombuffer(row.embedding, dtype=np.float32)
            assert np.allclose(stored, embedder.embed([row.text])[0], atol=1e-5)
    finally:
        headed.close()
