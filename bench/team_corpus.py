"""Real text for the million-passage benchmark (bench/team.py --size ...), embedded once.

Why: a million passages cannot be embedded on a 2-core machine in a session (hours), and a
set made from too few real vectors (1,424 last time, ~700 copies each) is unfairly hard for
HNSW: a query's true top 10 are 10 of hundreds of near-equidistant copies. So the set is
made from as much real text as ../shared/data holds (tens of thousands of texts), each
embedded with the shipped fp32 encoder, and the vectors are kept under .cache/ so a rerun
does not embed again.

The texts, deduplicated (exact text) and in a fixed order:

- ``xquad_passage``: XQuAD's 240 English contexts, the quality check's targets;
- ``xquad_sentence``: every sentence of those contexts of five words or more;
- ``document_passage`` / ``document_sentence``: the passages (the team plugin's own
  chunker: at most 200 word-pieces) and the sentences (five words or more) of every file
  in ``formats/`` and ``reports/`` the built-in loaders read;
- ``safety_text``: the ``text`` column of every CSV in ``safety-train/`` (short requests,
  questions, tweets, sentences: real text, whatever its label).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / ".cache" / "bench-team-corpus"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Corpus:
    """Real texts, their kinds (``KINDS`` indices) and their unit vectors, row for row."""

    texts: list[str]
    kinds: np.ndarray
    vectors: np.ndarray
    embed_seconds: float  # what embedding took when the cache was made (0 if unknown)

    def count(self) -> dict[str, int]:
        return {k: int((self.kinds == i).sum()) for i, k in enumerate(KINDS)}


KINDS = ("xquad_passage", "xquad_sentence", "document_passage", "document_sentence", "safety_text")


def sentences(text: str) -> list[str]:
    """Sentences of five words or more (shorter ones are headings, numbers, page furniture)."""
    return [s for s in (" ".join(p.split()) for p in _SENTENCE.split(text)) if len(s.split()) >= 5]


def collect(loaders: Any, chunker: Any) -> tuple[list[str], list[int]]:
    """Every real text of ../shared/data this benchmark uses, deduplicated, in a fixed order."""
    from archivist_team.ingestion import pick_loader

    found: list[tuple[str, int]] = []
    xquad = json.loads((DATA / "xquad" / "xquad.en.json").read_text("utf-8"))["data"]
    contexts = [p["context"] for a in xquad for p in a["paragraphs"]]
    found += [(c, 0) for c in contexts]
    found += [(s, 1) for c in contexts for s in sentences(c)]
    for folder in ("formats", "reports"):
        for path in sorted((DATA / folder).rglob("*")):
            loader = pick_loader(path, loaders) if path.is_file() else None
            if loader is None:
                continue
            try:
                doc = loader.load(path)
            except Exception as exc:  # noqa: BLE001 - an unreadable sample is skipped, as the app does
                print(f"  skipped {path.name}: {str(exc)[:80]}", file=sys.stderr)
                continue
            found += [(" ".join(c.text.split()), 2) for c in chunker.chunk(doc) if len(c.text.split()) >= 5]
            found += [(s, 3) for part in doc.parts for s in sentences(part.text)]
    for path in sorted((DATA / "safety-train").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            found += [(" ".join(row["text"].split()), 4) for row in csv.DictReader(f) if len(row["text"].split()) >= 3]
    seen: set[str] = set()
    texts, kinds = [], []
    for text, kind in found:
        if text and text not in seen:
            seen.add(text)
            texts.append(text)
            kinds.append(kind)
    return texts, kinds


def load(loaders: Any, encoder: Any, cache: Path = CACHE) -> Corpus:
    """The corpus, embedded; from ``cache`` when the same texts were embedded before."""
    import time

    texts, kinds = collect(loaders, encoder.chunker)
    key = hashlib.sha256("\n\x00".join(texts).encode("utf-8") + str(encoder.folder()).encode()).hexdigest()[:16]
    file = cache / f"{key}.npz"
    if file.exists():
        saved = np.load(file)
        return Corpus(texts, np.asarray(kinds, dtype=np.int8), saved["vectors"], float(saved["seconds"]))
    print(f"embedding {len(texts)} real texts (cached afterwards in {file})", flush=True)
    t = time.perf_counter()
    done = [0]

    def progress(n: int, total: int) -> None:
        if n - done[0] >= 5000 or n == total:
            done[0] = n
            print(f"  {n}/{total} in {time.perf_counter() - t:.0f} s", flush=True)

    vectors = encoder.embedder.embed(texts, progress).astype(np.float32)
    seconds = time.perf_counter() - t
    cache.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=vectors, seconds=np.float64(seconds))
    tmp.replace(file)  # (written whole, then renamed: an interrupted run leaves no half cache)
    return Corpus(texts, np.asarray(kinds, dtype=np.int8), vectors, seconds)
