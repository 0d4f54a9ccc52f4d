"""Contextual passage headers (issue #13): what tells near-identical documents apart is in
their names and first lines, so each passage is indexed with them, dense and keyword,
and shown without them. Real encoder, FAISS and SQLite."""

from __future__ import annotations

from pathlib import Path

from archivist import Document, DocumentPart, Locator
from archivist_faiss.headers import HEADER_TOKENS, capped, header_text, with_header

BODY = ("Factual information\n\n" + "The pilot reported that the engine lost power during the climb after takeoff. "
        "He selected a field and landed, and the airplane struck a fence. " * 3 + "\n\n"
        "Weather\n\nThe wind was calm and the visibility was ten miles. The runway was dry.\n")


def report(folder: Path, name: str, place: str, aircraft: str) -> Path:
    path = folder / name
    path.write_text(f"Location: {place}. Aircraft: {aircraft}.\n\n" + "Summary of the flight.\n\n" * 40 + BODY)
    return path


def test_the_header_names_the_file_title_metadata_and_first_lines(embedder) -> None:
    doc = Document("/x/NCT0615_Prot_000.pdf", (DocumentPart("Study  Protocol ____________ Title: Knee pain\n",
                                                            Locator(page=1)),),
                   title="Knee study", metadata={"author": "Dr Lee"})
    assert header_text("/x/NCT0615_Prot_000.pdf", doc) == "NCT0615 Prot 000 | Knee study | Dr Lee | Study Protocol Title: Knee pain"
    long = header_text("/x/a.txt", Document("/x/a.txt", (DocumentPart("word " * 500, Locator()),)))
    cut = capped(long, embedder.tokenizer)
    assert long.startswith(cut) and len(embedder.tokenizer.encode(cut, add_special_tokens=False).ids) <= HEADER_TOKENS
    assert with_header("h", ["a", "b"]) == ["h\na", "h\nb"] and with_header("", ["a"]) == ["a"]


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
            # Dense: the weather passages are the same words in every report; with its
            # header, each embeds with its place, so the right report's comes first.
            found += right(headed.search(query, k=1, mode="dense")[0], place)
            plain_found += right(plain.search(query, k=1, mode="dense")[0], place)
            # Keyword: the header is in every passage's second column, so the report is found.
            assert of(headed.search(query, k=1, mode="keyword")[0], place), query
            hit = headed.search(query, k=1)[0]
            assert of(hit, place), query
            assert hit.text in Path(hit.path).read_text() and " | " not in hit.text  # shown without its header
        assert found == len(places) and plain_found <= 2, (found, plain_found)
    finally:
        headed.close()
