"""Test doubles more than one test folder installs (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

from archivist import Passage, hookimpl


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
    """A plugin that registers one given retriever."""

    def __init__(self, retriever: object) -> None:
        self.retriever = retriever

    @hookimpl
    def register_retrievers(self, register):
        register(self.retriever)


class CollectionRetriever(StaticRetriever):
    """A shared collection's retriever (``archivist.SharedCollection``): the user chooses it
    by ``collection``, beside their own library."""

    def __init__(self, collection: str, passages: list[Passage]) -> None:
        super().__init__(passages)
        self.name = f"shared:{collection}"
        self.collection = collection
