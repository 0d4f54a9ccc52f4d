"""The sentence encoder and its chunker, loaded the first time a text is embedded.

The same encoder the local library uses (``archivist_models``: the home's built encoder,
built from the pinned wheel when that is on disk, never downloaded here), so a question
embeds the same way whichever collection it searches. Nothing is loaded to list
collections or count passages.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from archivist import ArchivistError
from archivist_team.chunking import Chunker

log = logging.getLogger(__name__)


def encoder_folder(home: Path) -> Path:
    from archivist_models.embedder import EmbedderMissing, ensure_embedder

    try:
        path: Path = ensure_embedder(Path(home) / "models", progress=log.warning)
    except EmbedderMissing as exc:
        raise ArchivistError(str(exc)) from exc
    return path


class LazyEncoder:
    """``embedder`` and ``chunker``, each made when first asked for."""

    def __init__(self, home: Path | None = None, *, path: Path | None = None, threads: int | None = None,
                 max_tokens: int = 200, overlap_tokens: int = 16) -> None:
        self.home, self.path, self.threads = home, path, threads
        self.max_tokens, self.overlap_tokens = max_tokens, overlap_tokens
        self._embedder: Any = None
        self._chunker: Chunker | None = None

    def folder(self) -> Path:
        if self.path is None:
            if self.home is None:
                raise ArchivistError("no sentence encoder was given")
            self.path = encoder_folder(self.home)
        return self.path

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from archivist_models.embeddings import Embedder

            self._embedder = Embedder(self.folder(), threads=self.threads)
        return self._embedder

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self.embedder.tokenizer.to_str())
            tok.no_truncation()
            tok.no_padding()
            self._chunker = Chunker(tok, self.max_tokens, self.overlap_tokens)
        return self._chunker
