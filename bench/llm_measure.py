"""The measurements both engine workers of ``bench/llm.py`` share.

This file is imported by ``llm_onnx.py`` (project venv) and ``llm_llamacpp.py`` (the
bench-only venv with llama-cpp-python), so it uses the standard library and numpy only.

An engine is an object with:

* ``prefill(ids, new_tokens)``: run the prompt through the model from an empty state
  (KV cache filled, logits of the last position ready), room for ``new_tokens`` more;
* ``next_token() -> int``: the greedy next token (end-of-sequence tokens masked out, so
  both engines always produce the same number of tokens), feeding the previous one
  first when there is one;
* ``window_logits(ids) -> ndarray[len(ids), vocab]``: logits of every position of one
  window, scored from an empty state.

A worker is run as ``python WORKER MODE --model PATH --job JOB.json --out OUT.json``
and writes one JSON object to OUT.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def rss_mb() -> float:
    """This process's current resident set size (VmRSS), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def os_threads() -> int:
    """How many OS threads this process has (to check the engine's thread setting)."""
    try:
        return len(list(Path("/proc/self/task").iterdir()))
    except OSError:
        return -1


def time_generation(engine: Any, prompt: list[int], new_tokens: int) -> dict[str, Any]:
    """One greedy generation: prompt processing, time to first token, decode speed.

    The first generated token comes from the prompt's logits; each of the other
    ``new_tokens - 1`` needs one forward pass, so decode speed is counted over those.
    """
    t0 = time.perf_counter()
    engine.prefill(prompt, new_tokens)
    t1 = time.perf_counter()
    tokens = [engine.next_token()]
    t2 = time.perf_counter()
    for _ in range(new_tokens - 1):
        tokens.append(engine.next_token())
    t3 = time.perf_counter()
    return {
        "prompt_tokens": len(prompt),
        "prompt_s": t1 - t0,
        "prompt_tok_s": len(prompt) / (t1 - t0),
        "ttft_ms": (t2 - t0) * 1000.0,
        "generated_tokens": len(tokens),
        "decode_s": t3 - t2,
        "decode_tok_s": (new_tokens - 1) / (t3 - t2) if new_tokens > 1 else float("nan"),
        "tokens": tokens,
    }


def score_windows(
    window_logits: Callable[[list[int]], np.ndarray], ids: list[int], window: int
) -> dict[str, Any]:
    """Negative log-likelihood of every token of ``ids`` but the first of each window.

    ``ids`` is cut into non-overlapping windows of ``window`` tokens (a shorter last one
    is dropped); each window is scored from an empty state, and position i predicts
    token i+1. Returns the per-token NLL and the argmax at each scored position.
    """
    nll: list[float] = []
    argmax: list[int] = []
    started = time.perf_counter()
    for start in range(0, len(ids) - window + 1, window):
        chunk = ids[start : start + window]
        logits = np.asarray(window_logits(chunk), dtype=np.float64)[: len(chunk) - 1]
        top = logits.max(axis=-1, keepdims=True)
        logz = np.log(np.exp(logits - top).sum(axis=-1)) + top[:, 0]
        targets = np.asarray(chunk[1:])
        nll.extend((logz - logits[np.arange(len(targets)), targets]).tolist())
        argmax.extend(logits.argmax(axis=-1).tolist())
    return {
        "scored_tokens": len(nll),
        "perplexity": float(np.exp(np.mean(nll))) if nll else float("nan"),
        "nll": nll,
        "argmax": argmax,
        "seconds": time.perf_counter() - started,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["tokenize", "speed", "ppl"])
    parser.add_argument("--model", required=True, help="GGUF file or ONNX model folder")
    parser.add_argument("--job", required=True, help="JSON file with the job's inputs")
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def run_worker(
    load: Callable[[str, int, str, dict[str, Any]], Any],
    tokenize: Callable[[str, str], list[int]],
    describe: Callable[[], dict[str, Any]],
    argv: list[str] | None = None,
) -> None:
    """The common ``main`` of both workers: load, run the job, write the result."""
    args = parse_args(argv)
    job = json.loads(Path(args.job).read_text(encoding="utf-8"))
    result: dict[str, Any] = {"mode": args.mode, "rss_start_mb": rss_mb()}
    if args.mode == "tokenize":
        result["ids"] = {name: tokenize(args.model, text) for name, text in job["texts"].items()}
    else:
        started = time.perf_counter()
        engine = load(args.model, args.threads, args.mode, job)
        result["load_s"] = time.perf_counter() - started
        result["rss_loaded_mb"] = rss_mb()
        result["os_threads_loaded"] = os_threads()
        if args.mode == "speed":
            warm = job["prompt"][: job.get("warmup_prompt_tokens", 32)]
            time_generation(engine, warm, job.get("warmup_new_tokens", 8))
            result.update(time_generation(engine, job["prompt"], job["new_tokens"]))
        else:
            result.update(score_windows(engine.window_logits, job["ids"], job["window"]))
        report = getattr(engine, "report", None)
        if report is not None and args.mode == "speed":
            result["engine_report"] = report()
        close = getattr(engine, "close", None)
        if close is not None:
            close()  # onnxruntime writes its profile when the session ends
        del engine
    result["peak_rss_mb"] = peak_rss_mb()
    result["os_threads_end"] = os_threads()
    result["engine"] = describe()
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")
    sys.stdout.flush()
