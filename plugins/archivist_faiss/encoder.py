"""The sentence encoder and the chunker made from its tokenizer, loaded on first use.

Ingestion and search share one encoder (onnxruntime session, ~90 MB), so it lives here
rather than in either. Nothing is loaded until a passage or a query has to be embedded:
opening the index to add a source or list files costs no onnxruntime start-up. The
encoder's folder is the one :func:`archivist_models.embedder.ensure_embedder` names for
the home; building it once from a wheel already on disk is announced in the log (the
command line prints it on stderr, the Library page shows it), and a missing encoder is
one :class:`archivist.ArchivistError` saying how to get it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from archivist import ArchivistError
from archivist_faiss.chunking import Chunker

log = logging.getLogger(__name__)


class LazyEncoder:
    """``embedder`` and ``chunker``, each made the first time it is asked for."""

    def __init__(self, home: Path, *, embedder: Any = None, embedder_path: Path | None = None,
                 max_tokens: int = 200, overlap_tokens: int = 16) -> None:
        self.home = Path(home)
        self._embedder = embedder
        self._embedder_path = embedder_path
        self._chunker: Chunker | None = None
        self.max_tokens, self.overlap_tokens = max_tokens, overlap_tokens

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from archivist_models.embeddings import Embedder

            self._embedder = Embedder(self._embedder_path or self._ensure())
        return self._embedder

    def _ensure(self) -> Path:
        from archivist_models.embedder import EmbedderMissing, ensure_embedder

        try:
            path: Path = ensure_embedder(self.home / "models", progress=log.warning)
        except EmbedderMissing as exc:
            raise ArchivistError(str(exc)) from exc
        return path

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self.embedder.tokenizer.to_str())
            tok.no_truncation()
            tok.no_padding()
            self._chunker = Chunker(tok, self.max_tokens, self.overlap_tokens)
        return self._chunker
