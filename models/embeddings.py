"""Sentence embeddings from a built encoder folder: the runtime half of the embedder.

:mod:`archivist_models.embedder` is the recipe that builds the folder (and names where a
home keeps it); :class:`Embedder` runs it: an onnxruntime session, the folder's
``tokenizer.json``, and batching by length. The retrieval plugin indexes and searches with
it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from archivist_models.embedder import RECIPE_FILE


class Embedder:
    """Sentence embeddings from a built encoder folder: ``Embedder(path).embed(texts)``.

    Returns float32 rows of unit length (cosine similarity is the dot product). Texts
    are batched by length so padding wastes little; rows come back in input order.
    """

    def __init__(self, path: Path, threads: int | None = None, batch_size: int = 32,
                 variant: str | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.path = Path(path)
        meta = json.loads((self.path / RECIPE_FILE).read_text("utf-8"))
        self.dim = int(meta["dim"])
        self.max_tokens = int(meta["max_tokens"])
        self.model_id = str(meta["model"])
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # Idle worker threads sleep instead of spinning: on a desktop shared with other
        # programs, spinning made a one-query embedding take ~50 ms instead of ~7 ms.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        # None: the recipe's default (an older folder without one: fp32)
        self.variant = variant or str(meta.get("default_variant", "fp32"))
        model = self.path / meta.get("variants", {}).get(self.variant, "model.onnx")
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens of ``text`` without the [CLS]/[SEP] pair or truncation."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """``progress(done, total)`` after each batch: a 600-page PDF is ~90 s of batches,
        and the callback may raise to stop between two of them."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.tokenizer.no_padding()
        # Only the ids are kept: a tokenizers Encoding also holds each token's string,
        # offsets and masks, and 40,000 passages' Encodings took over a gigabyte.
        token_ids: list[np.ndarray] = []
        for start in range(0, len(texts), 1024):
            token_ids += [np.asarray(e.ids, dtype=np.int64) for e in self.tokenizer.encode_batch(texts[start:start + 1024])]
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            width = max(len(token_ids[i]) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(token_ids[i])
                ids[row, :n] = token_ids[i]
                mask[row, :n] = 1
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if progress:
                progress(min(b + self.batch_size, len(order)), len(order))
        return out
