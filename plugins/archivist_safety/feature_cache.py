"""Encoder features of the training texts, cached on disk so a rebuild embeds only new texts.

The cache is one ``.npz`` per encoder build (recipe version and layer counts in its
name) under ``.cache/safety-features/`` in the checkout, outside git: the text's SHA-1,
its pooled embedding at the cut and at the deep layer. Embedding is one text at a time
with the run-time :class:`archivist_safety.encoder.Encoder`, so the features are the
ones the filter computes when it screens.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

SAVE_EVERY = 2000


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embeddings(texts: list[str], home: Path, wheel_cache: Path | None, folder: Path,
               progress: bool = True) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """(cut embeddings, deep embeddings, encoder recipe, cut layers, deep layers) for ``texts``."""
    from archivist_safety.encoder import DEEP_LAYERS, Encoder

    encoder = Encoder.for_home(home, wheel_cache, deep_layers=DEEP_LAYERS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"features-r{encoder.recipe_version}-l{encoder.layers}-d{DEEP_LAYERS}.npz"
    known: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if path.exists():
        with np.load(path) as data:
            for k, c, d in zip(data["keys"], data["cut"], data["deep"]):
                known[str(k)] = (c, d)

    def save() -> None:
        keys = sorted(known)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), cut=np.stack([known[k][0] for k in keys]),
                 deep=np.stack([known[k][1] for k in keys]))
        tmp.replace(path)

    todo = [t for t in dict.fromkeys(texts) if _digest(t) not in known]
    start = time.monotonic()
    for i, text in enumerate(todo, 1):
        pooled, hidden = encoder.encode(text)
        known[_digest(text)] = (pooled, encoder.deepen(hidden))
        if i % SAVE_EVERY == 0 or i == len(todo):
            save()
            if progress:
                rate = i / (time.monotonic() - start)
                print(f"embedded {i}/{len(todo)} new texts ({rate:.0f}/s)", file=sys.stderr)
    cut = np.stack([known[_digest(t)][0] for t in texts]) if texts else np.zeros((0, 384), np.float32)
    deep = np.stack([known[_digest(t)][1] for t in texts]) if texts else np.zeros((0, 384), np.float32)
    return cut, deep, encoder.recipe_version, encoder.layers, DEEP_LAYERS
