"""The built-in retrieval plugin: loaders, chunking, ONNX embeddings, FAISS + FTS5, fusion.

It uses only Archivist's public API and is registered through the ``archivist``
entry-point group like any third-party plugin. It contributes the library the user adds
folders to (:class:`~archivist_faiss.library.FaissLibrary`), a retriever over the same
index (:class:`FaissRetriever`) and the built-in document loaders. Heavy modules
(SQLAlchemy, faiss, onnxruntime, parsers) are imported when first used, so discovery
stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from archivist import Passage, PluginContext, hookimpl
from archivist_faiss import catalog, integrity

# Cosine similarity below which a chunk is not offered to the model. Measured with the
# MiniLM encoder on XQuAD (48 Wikipedia articles): 0.30 keeps the best chunk for 98.3%
# of real questions and lets through 22% of unrelated prompts (XSTest); 0.25 keeps
# everything but lets half of the unrelated through.
MIN_SIMILARITY = 0.30


class FaissRetriever:
    """Hybrid dense + keyword search over the index in ``<home>/plugins/faiss`` (also
    ``archivist.Countable`` and ``archivist.Closable``).

    Only chunks similar enough to the question are returned, so an unrelated question
    gets no sources and the assistant says it found nothing instead of guessing.
    """

    name = "faiss"

    def __init__(self, home: Path, min_similarity: float = MIN_SIMILARITY) -> None:
        self.home = Path(home)
        self.min_similarity = min_similarity
        self._index: Any = None

    @property
    def index(self) -> Any:
        if self._index is None:
            from archivist_faiss.index import open_index

            with integrity.reported(catalog.database_path(self.home)):
                self._index = open_index(self.home)
        return self._index

    @integrity.reports_damage
    def search(self, query: str, k: int = 5) -> list[Passage]:
        hits = self.index.search(query, k, min_similarity=self.min_similarity)
        return [h.to_passage() for h in hits]

    @integrity.reports_damage
    def count(self) -> int:
        """Passages indexed: 0 tells the assistant to answer without documents."""
        if self._index is None:
            # Asked before every question: answer from the file with the standard
            # library, so an empty library costs no SQLAlchemy/FAISS/encoder start-up.
            count = catalog.read(catalog.database_path(self.home), catalog.count, 0)
            if count is not None:
                return count
        return int(self.index.chunk_count())

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None


@hookimpl
def register_retrievers(register: Callable[[Any], None], context: PluginContext) -> None:
    settings = context.settings.get("retrieval", {})
    register(FaissRetriever(context.home, float(settings.get("min_similarity", MIN_SIMILARITY))))


@hookimpl
def register_loaders(register: Callable[[Any], None], context: PluginContext) -> None:
    from archivist_faiss.loading import builtin_loaders
    from archivist_faiss.reading import Limits

    for loader in builtin_loaders(Limits.from_settings(context.settings).time_s):
        register(loader)


@hookimpl
def register_libraries(register: Callable[[Any], None], context: PluginContext) -> None:
    from archivist_faiss.library import FaissLibrary

    register(FaissLibrary(context))
