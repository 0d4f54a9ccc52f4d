"""The assistant's retriever offers only chunks related to the question."""

from __future__ import annotations

from pathlib import Path

import archivist_faiss
from archivist import PluginContext


def write_docs(folder: Path) -> Path:
    folder.mkdir()
    (folder / "festival.txt").write_text(
        "The Zorblat festival takes place every June in the town of Quimby. "
        "Visitors bring paper lanterns and the bakers sell honey cakes."
    )
    (folder / "boiler.txt").write_text(
        "To reset the boiler, hold the red button for ten seconds until the pilot light "
        "blinks twice, then turn the dial back to the winter setting."
    )
    return folder


def retriever_for(home: Path, docs: Path, embedder) -> archivist_faiss.FaissRetriever:
    from archivist_faiss.index import open_index

    ix = open_index(home, embedder=embedder)
    ix.index([docs])
    ix.close()
    got: list = []
    archivist_faiss.register_retrievers(got.append, PluginContext(home=home))
    return got[0]


def test_a_related_question_gets_the_right_source(faiss_home: Path, tmp_path: Path, embedder) -> None:
    retriever = retriever_for(faiss_home, write_docs(tmp_path / "docs"), embedder)
    passages = retriever.search("How do I reset my boiler?", 5)
    assert passages and passages[0].path.endswith("boiler.txt")
    assert all(not p.path.endswith("festival.txt") for p in passages)
    assert retriever.count() == 2


def test_an_unrelated_question_gets_no_sources(faiss_home: Path, tmp_path: Path, embedder) -> None:
    retriever = retriever_for(faiss_home, write_docs(tmp_path / "docs"), embedder)
    assert retriever.search("What is the best programming language for games?", 5) == []


def test_a_bare_keyword_still_finds_the_chunk_holding_it(faiss_home: Path, tmp_path: Path, embedder) -> None:
    retriever = retriever_for(faiss_home, write_docs(tmp_path / "docs"), embedder)
    passages = retriever.search("Zorblat", 5)
    assert [p.path.rsplit("/", 1)[-1] for p in passages] == ["festival.txt"]


def test_the_threshold_is_a_setting(faiss_home: Path) -> None:
    got: list = []
    archivist_faiss.register_retrievers(
        got.append, PluginContext(home=faiss_home, settings={"retrieval": {"min_similarity": 0.5}})
    )
    assert got[0].min_similarity == 0.5
