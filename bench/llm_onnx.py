"""ONNX side of ``bench/llm.py``: runs in the project venv.

    .venv/bin/python bench/llm_onnx.py {tokenize,speed,ppl} \
        --model MODEL_FOLDER --job JOB.json --out OUT.json --threads 2

Speed goes through onnxruntime-genai, the way ``archivist.engine.runtime`` runs the model
(greedy search, ``min_length`` = ``max_length`` so end-of-sequence never stops it early),
with the decoder session's intra-op threads set through a genai_config overlay.
Perplexity needs the logits of every position, so ``model.onnx`` is run with onnxruntime
directly on each window, from an empty KV cache.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_measure import run_worker

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def genai_config(folder: str, threads: int, profile_prefix: str | None = None) -> Any:
    import onnxruntime_genai as og

    og.disable_telemetry_events()  # private by default, as the app does
    config = og.Config(folder)
    config.clear_providers()
    session: dict[str, Any] = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    if profile_prefix:
        session["enable_profiling"] = profile_prefix
    config.overlay(json.dumps({"model": {"decoder": {"session_options": session}}}))
    return config


@cache
def _tokenizer(folder: str) -> Any:
    import onnxruntime_genai as og

    return og.Tokenizer(og.Model(genai_config(folder, 1)))


def tokenize(folder: str, text: str) -> list[int]:
    """onnxruntime-genai's tokenisation of ``text`` (what the app's runtime feeds)."""
    return [int(t) for t in _tokenizer(folder).encode(text)]


class GenaiEngine:
    """Generation through onnxruntime-genai."""

    def __init__(self, folder: str, threads: int, job: dict[str, Any]) -> None:
        import onnxruntime_genai as og

        self.og = og
        self.model = og.Model(genai_config(folder, threads, job.get("profile_prefix")))
        self.generator: Any = None

    def close(self) -> None:
        self.generator = None
        self.model = None

    def prefill(self, ids: list[int], new_tokens: int) -> None:
        og = self.og
        self.generator = None
        params = og.GeneratorParams(self.model)
        length = len(ids) + new_tokens
        params.set_search_options(max_length=length, min_length=length, do_sample=False)
        self.generator = og.Generator(self.model, params)
        self.generator.append_tokens(np.asarray(ids, dtype=np.int32))

    def next_token(self) -> int:
        self.generator.generate_next_token()
        return int(self.generator.get_next_tokens()[0])


class OrtEngine:
    """All-position logits from ``model.onnx`` with onnxruntime, empty past."""

    def __init__(self, folder: str, threads: int, job: dict[str, Any]) -> None:
        import onnxruntime as ort

        config = json.loads((Path(folder) / "genai_config.json").read_text(encoding="utf-8"))
        filename = config["model"]["decoder"]["filename"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(Path(folder) / filename), options, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.logits_name = config["model"]["decoder"].get("outputs", {}).get("logits", "logits")

    def window_logits(self, ids: list[int]) -> np.ndarray:
        n = len(ids)
        feeds: dict[str, np.ndarray] = {}
        for arg in self.inputs:
            dtype = _ORT_DTYPES[arg.type]
            name = arg.name
            if name == "input_ids":
                feeds[name] = np.asarray([ids], dtype=dtype)
            elif name == "attention_mask":
                feeds[name] = np.ones((1, n), dtype=dtype)
            elif name == "position_ids":
                feeds[name] = np.arange(n, dtype=dtype)[None, :]
            elif name == "seqlens_k":  # GroupQueryAttention: total length - 1 per row
                feeds[name] = np.asarray([n - 1], dtype=dtype)
            elif name == "total_sequence_length":
                feeds[name] = np.asarray(n, dtype=dtype)
            elif name.startswith("past_key_values") or name.startswith("past_"):
                shape = [d if isinstance(d, int) else 0 for d in arg.shape]
                shape[0] = 1
                feeds[name] = np.zeros(shape, dtype=dtype)
            else:
                raise SystemExit(f"llm_onnx: don't know how to feed input {name!r} {arg.shape}")
        (logits,) = self.session.run([self.logits_name], feeds)
        return np.asarray(logits[0], dtype=np.float32)


def describe() -> dict[str, Any]:
    import onnxruntime as ort
    import onnxruntime_genai as og

    return {
        "name": "onnxruntime-genai",
        "onnxruntime": ort.__version__,
        "onnxruntime_genai": og.__version__,
        "python": sys.version.split()[0],
    }


def load(folder: str, threads: int, mode: str, job: dict[str, Any]) -> Any:
    if mode == "ppl":
        return OrtEngine(folder, threads, job)
    return GenaiEngine(folder, threads, job)


if __name__ == "__main__":
    run_worker(load, tokenize, describe)
