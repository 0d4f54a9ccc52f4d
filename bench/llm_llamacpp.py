"""llama.cpp side of ``bench/llm.py``: runs in the bench-only venv (llama-cpp-python).

    .bench-venv-llama/bin/python bench/llm_llamacpp.py {tokenize,speed,ppl} \
        --model MODEL.gguf --job JOB.json --out OUT.json --threads 2

Generation is driven token by token through ``Llama.eval`` with a greedy argmax over the
last logits (end-of-sequence ids masked), the same loop the ONNX worker runs, so both
engines do the same work: one batched prompt pass, then one single-token pass per token.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llama_cpp
from llm_measure import run_worker


@cache
def _vocab(path: str) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def tokenize(path: str, text: str) -> list[int]:
    """llama.cpp's tokenisation of ``text``: no BOS added, special tokens not parsed."""
    return [int(t) for t in _vocab(path).tokenize(text.encode("utf-8"), add_bos=False, special=False)]


class LlamaCppEngine:
    def __init__(self, path: str, threads: int, mode: str, job: dict[str, Any]) -> None:
        if mode == "ppl":
            n_ctx = int(job["window"])
        else:
            n_ctx = len(job["prompt"]) + int(job["new_tokens"])
        self.llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_batch=max(512, n_ctx),
            n_ubatch=512,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=(mode == "ppl"),
            flash_attn=bool(job.get("flash_attn", False)),
            verbose=False,
        )
        self.n_vocab = self.llm.n_vocab()
        self.mask = np.asarray(sorted(set(job.get("mask_ids", [])) | {self.llm.token_eos()}))
        self._pending: int | None = None

    def prefill(self, ids: list[int], new_tokens: int) -> None:
        self.llm.reset()
        self._pending = None
        llama_cpp.llama_perf_context_reset(self.llm.ctx)
        self.llm.eval(ids)

    def report(self) -> dict[str, Any]:
        """llama.cpp's own timers for the last generation (no Python in them)."""
        perf = llama_cpp.llama_perf_context(self.llm.ctx)
        return {"t_p_eval_ms": perf.t_p_eval_ms, "n_p_eval": perf.n_p_eval,
                "t_eval_ms": perf.t_eval_ms, "n_eval": perf.n_eval,
                "internal_prompt_tok_s": 1000.0 * perf.n_p_eval / max(perf.t_p_eval_ms, 1e-9),
                "internal_decode_tok_s": 1000.0 * perf.n_eval / max(perf.t_eval_ms, 1e-9)}

    def next_token(self) -> int:
        if self._pending is not None:
            self.llm.eval([self._pending])
        # Llama.eval keeps no logits unless logits_all; read the last row from llama.cpp.
        row = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(row, shape=(self.n_vocab,)).copy()
        logits[self.mask] = -np.inf
        self._pending = int(logits.argmax())
        return self._pending

    def window_logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)


def describe() -> dict[str, Any]:
    info = llama_cpp.llama_print_system_info()
    return {
        "name": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": info.decode() if isinstance(info, bytes) else str(info),
        "python": sys.version.split()[0],
    }


def load(path: str, threads: int, mode: str, job: dict[str, Any]) -> LlamaCppEngine:
    return LlamaCppEngine(path, threads, mode, job)


if __name__ == "__main__":
    run_worker(load, tokenize, describe)
