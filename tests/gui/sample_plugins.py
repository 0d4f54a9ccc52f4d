"""Plugins the GUI tests install: fixed passages, and failures to inject."""

from __future__ import annotations

from archivist import Locator, Passage, hookimpl


class StaticRetriever:
    """Returns the same passages for every query (the retrieval plugin is tested elsewhere)."""

    name = "static"

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages

    def count(self) -> int:
        return len(self.passages)

    def search(self, query: str, k: int = 5) -> list[Passage]:
        return self.passages[:k]


class RetrieverPlugin:
    def __init__(self, retriever: object) -> None:
        self.retriever = retriever

    @hookimpl
    def register_retrievers(self, register):
        register(self.retriever)


FESTIVAL = Passage(
    text="The Zorblat festival takes place every June in the town of Quimby.",
    path="/docs/festivals.pdf",
    locator=Locator(page=3, start=0, end=66),
    score=1.0,
)
