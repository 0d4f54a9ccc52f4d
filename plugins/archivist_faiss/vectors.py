"""The FAISS side of the index: exact search while small, IVF once large.

Vectors are unit length, so inner product is cosine similarity. Ids are the chunk ids of
the SQLite database. The file on disk is a cache stamped with the database's generation
counter; when the stamp does not match (a run killed between commit and save, a file
from another version), the index is rebuilt from the embeddings kept in SQLite.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_APPROX_THRESHOLD = 50_000

VectorBatches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def _faiss():
    import faiss

    return faiss


def _threads(n: int) -> None:
    """OpenMP threads for FAISS: all cores to train and add, one to answer a query (one
    query gains nothing from threads, and waiting for busy cores costs tens of ms)."""
    _faiss().omp_set_num_threads(max(1, n))


MAX_NLIST = 1024
MAX_TRAIN = 65_536


def nlist_for(n: int) -> int:
    """IVF cell count: about 4·√n, between 16 and 1024, with ≥ 39 training points per cell.

    Capped at 1024 so training stays seconds on two cores even at a million chunks."""
    return max(16, min(int(4 * math.sqrt(n)), n // 39, MAX_NLIST))


def nprobe_for(nlist: int) -> int:
    """Cells probed per query: 1/16 of them, at least 32 (bench/retrieval.py: recall@10
    against exact search 1.000 at 100k and 0.991 at 1M chunks with 1024/64)."""
    return min(nlist, max(32, nlist // 16))


class VectorIndex:
    def __init__(self, path: Path, dim: int, approx_threshold: int = DEFAULT_APPROX_THRESHOLD) -> None:
        self.path = Path(path)
        self.stamp_path = self.path.with_suffix(".json")
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.index: Any = None  # a faiss index (faiss ships no types)
        self.kind = "flat"
        self.trained_on = 0
        self.dirty = False

    # ------------------------------------------------------------------ lifecycle

    def load(self, generation: int, count: int) -> bool:
        """Load the file if it matches ``generation`` and holds ``count`` vectors."""
        faiss = _faiss()
        try:
            stamp = json.loads(self.stamp_path.read_text("utf-8"))
            if stamp.get("generation") != generation or stamp.get("dim") != self.dim:
                return False
            index = faiss.read_index(str(self.path))
        except (OSError, ValueError, RuntimeError):
            return False
        if index.ntotal != count:
            return False
        self.index, self.kind, self.trained_on = index, stamp.get("kind", "flat"), stamp.get("trained_on", 0)
        self._tune()
        self.dirty = False
        return True

    def rebuild(self, count: int, batches: VectorBatches) -> None:
        """A fresh index over every vector ``batches()`` yields, of the kind ``count`` calls for."""
        faiss = _faiss()
        _threads(os.cpu_count() or 1)
        if count >= self.approx_threshold:
            nlist = nlist_for(count)
            _, sample = _sample(batches, min(max(nlist * 64, 20_000), MAX_TRAIN), count)
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(sample)
            self.kind, self.trained_on = "ivf", count
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            self.kind, self.trained_on = "flat", 0
        for ids, vecs in batches():
            if len(ids):
                index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids.astype(np.int64))
        self.index = index
        self._tune()
        self.dirty = True
        _threads(1)

    def ensure(self) -> None:
        if self.index is None:
            faiss = _faiss()
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            self.kind = "flat"

    def needs_rebuild(self) -> bool:
        """Whether the collection outgrew (or shrank out of) the current kind of index."""
        n = self.count
        if self.kind == "flat":
            return n >= self.approx_threshold
        return n < self.approx_threshold // 2 or n > 4 * max(self.trained_on, 1)

    def save(self, generation: int) -> None:
        """Write to a temporary name, flush, rename; then the stamp, the same way."""
        if self.index is None:
            return
        faiss = _faiss()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        stamp = {"generation": generation, "dim": self.dim, "kind": self.kind,
                 "trained_on": self.trained_on, "count": self.count}
        tmp_stamp = self.stamp_path.with_name(self.stamp_path.name + ".tmp")
        with open(tmp_stamp, "w", encoding="utf-8") as fh:
            json.dump(stamp, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_stamp, self.stamp_path)
        self.dirty = False

    # ------------------------------------------------------------------ use

    @property
    def count(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self.ensure()
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.asarray(ids, dtype=np.int64))
            self.dirty = True

    def remove(self, ids: Iterable[int]) -> None:
        ids = np.fromiter(ids, dtype=np.int64)
        if self.index is not None and len(ids):
            self.index.remove_ids(ids)
            self.dirty = True

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.index is None or self.count == 0 or k <= 0:
            return []
        _threads(1)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, self.count))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def set_nprobe(self, nprobe: int) -> None:
        if self.kind == "ivf" and self.index is not None:
            self.index.nprobe = nprobe

    def _tune(self) -> None:
        if self.kind == "ivf" and self.index is not None:
            self.index.nprobe = nprobe_for(self.index.nlist)


def _sample(batches: VectorBatches, want: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``want`` vectors spread evenly over the collection, for IVF training."""
    step = max(1, count // want)
    ids, vecs = [], []
    seen = 0
    for bid, bvec in batches():
        offset = (-seen) % step
        ids.append(bid[offset::step])
        vecs.append(bvec[offset::step])
        seen += len(bid)
    return np.concatenate(ids), np.ascontiguousarray(np.concatenate(vecs), dtype=np.float32)
