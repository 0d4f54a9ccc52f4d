"""Safety filter latency with the encoder on 1 thread against N threads, in one run.

The same screener (``bench/safety.py``'s: the plugin through ``PluginHost`` and
``Screener``, so the host's guard is in the figure) screens the XSTest prompts at the
input stage (per item) and streams the toxicity comments at the output stage (per
sentence), in alternating rounds, swapping only the learned layer's encoder between
thread counts (``bench/safety.py``'s ``set_threads``). It checks that every verdict and
head score is the same for every thread count (they must be, bit for bit: the threads
split products' rows and columns, never a sum), and prints p50 / p95 per thread count,
pooled over the rounds, with each round's median. ``--profile`` then profiles one
output pass with cProfile (where the Python time goes) and the two encoder graphs with
onnxruntime's profiler (which operators).

    .venv/bin/python bench/safety_latency.py [--threads 1,2] [--rounds 3] [--profile]
                                             [--out bench/results/safety-latency.json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from archivist.screening import Screener
from archivist.types import Stage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_name  # noqa: E402
from safety import chunks, load_sets, screener, set_threads  # noqa: E402


def learned_of(s: Screener) -> Any:
    return next(lay for f in s.filters if (lay := getattr(f.obj, "learned", None)) is not None)


def one_pass(s: Screener, items: list[tuple[str, bool]], stage: Stage) -> tuple[list[float], list[tuple]]:
    """Latencies (ms; per item at input, per sentence at output) and what was decided."""
    lat: list[float] = []
    decided: list[tuple] = []
    for text, _ in items:
        if stage is Stage.OUTPUT:
            s.delays_ms = []
            events = list(s.screen_stream(chunks(text)))
            lat += s.delays_ms
            decided.append(tuple((e.verdict.action.value, e.verdict.categories, e.verdict.score) for e in events))
        else:
            t0 = time.perf_counter()
            v = s.screen(text, stage)
            lat.append((time.perf_counter() - t0) * 1000)
            decided.append((v.action.value, v.categories, v.score))
    return lat, decided


def quantiles(lat: list[float]) -> dict[str, float]:
    q = statistics.quantiles(lat, n=20)
    return {"p50": round(statistics.median(lat), 3), "p95": round(q[18], 3), "n": len(lat)}


def head_scores(learned: Any, texts: list[str]) -> np.ndarray:
    """The head's class probabilities for ``texts`` (each with the deep view where the
    band asks for it), for the bit-for-bit check."""
    return np.stack([learned.probabilities(t) for t in texts])


def profile(s: Screener, items: list[tuple[str, bool]], learned: Any, folder: Path) -> dict[str, Any]:
    """cProfile over one output pass, and onnxruntime's per-operator times for the two
    encoder graphs on the same sentences."""
    import onnxruntime as ort

    from archivist_safety.encoder import THREADS, well_formed

    sentences: list[str] = []
    for t, _ in items:
        sentences += _sentences(t)
    parts = breakdown(s, learned, sentences)
    # The host runs each screen on a guard thread, which cProfile does not follow, so the
    # filter's own work is profiled by calling it directly here.
    filt: Any = next(f.obj for f in s.filters if getattr(f.obj, "learned", None) is learned)
    prof = cProfile.Profile()
    prof.enable()
    before = ""
    for x in sentences:
        filt.screen(x, Stage.OUTPUT, context=before)
        before = x
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(35)
    text = buf.getvalue()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    text += buf.getvalue()
    print(text)
    # onnxruntime's profiler, on the graph files the encoder opened.
    enc = learned.encoder
    files = {"cut": Path(enc.session._model_path), "tail": Path(enc.tail._model_path) if enc.tail else None}
    ids = [np.array([enc.tokenizer.encode(well_formed(x)).ids], dtype=np.int64) for x in sentences[:600]]
    ops: dict[str, dict[str, float]] = {}
    for name, path in files.items():
        if path is None:
            continue
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = THREADS
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.enable_profiling = True
        opts.profile_file_prefix = str(folder / f"ort-{name}")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        hidden = None
        for token_ids in ids:
            feed = {"input_ids": token_ids, "attention_mask": np.ones_like(token_ids)}
            if name == "cut":
                sess.run(None, feed)
            else:
                hidden = enc.session.run(None, feed)[0]
                sess.run(None, {"hidden": hidden, "attention_mask": np.ones(hidden.shape[:2], np.int64)})
        trace_file = Path(sess.end_profiling())
        trace = json.loads(trace_file.read_text())
        trace_file.unlink()  # tens of MB; the sums below are what is kept
        per: dict[str, float] = {}
        for ev in trace:
            if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
                op = ev.get("args", {}).get("op_name", "?")
                per[op] = per.get(op, 0.0) + ev["dur"] / 1000.0
            elif ev.get("cat") == "Session" and ev["name"] == "model_run":
                per["(model_run total)"] = per.get("(model_run total)", 0.0) + ev["dur"] / 1000.0
        per = {k: round(v / len(ids), 4) for k, v in sorted(per.items(), key=lambda kv: -kv[1])}
        ops[name] = per
        print(f"onnxruntime {name} graph, ms per sentence by operator ({len(ids)} sentences):")
        for op, ms in per.items():
            print(f"  {op:28} {ms:8.3f}")
    return {"cprofile": text, "ort_ms_per_sentence_by_op": ops, "breakdown_ms_p50": parts}


def breakdown(s: Screener, learned: Any, sentences: list[str]) -> dict[str, float]:
    """Median ms a sentence for each layer of the work, each timed over all ``sentences``
    in turn: the 4-layer encoder, the deep tail (on every sentence, though only those in
    the band pay it), the lexical features with the intent rules, the filter's whole
    ``screen`` called directly, and through the host's guard as the stream calls it."""
    from archivist_safety.classifier import lexical_features
    from archivist_safety.intent import find_harmful_intent

    filt = next(f.obj for f in s.filters if getattr(f.obj, "learned", None) is learned)
    enc = learned.encoder

    def timed(fn: Any) -> float:
        out = []
        for x in sentences:
            t0 = time.perf_counter()
            fn(x)
            out.append((time.perf_counter() - t0) * 1000)
        return round(statistics.median(out), 3)

    hidden = {x: enc.encode(x)[1] for x in sentences}
    parts = {
        "tokenize": timed(lambda x: enc.tokenizer.encode(x)),
        "encoder, 4 layers (incl. tokenize, pool)": timed(enc.encode),
        "deep tail, layers 5-6 (if read)": timed(lambda x: enc.deepen(hidden[x])),
        "intent rules": timed(find_harmful_intent),
        "lexical features (incl. intent rules)": timed(lambda x: lexical_features(x)),
        "head.probabilities (learned layer, all of it)": timed(learned.probabilities),
        "filter.screen, direct": timed(lambda x: filt.screen(x, Stage.OUTPUT)),
        "Screener.screen (host guard thread)": timed(lambda x: s.screen(x, Stage.OUTPUT)),
    }
    tokens = [len(enc.tokenizer.encode(x).ids) for x in sentences]
    parts["tokens a sentence, median"] = float(statistics.median(tokens))
    in_band = 0
    head = learned.head
    for x in sentences:
        p = learned.probabilities(x)
        first = head.unsafe(head.probabilities(np.hstack([enc.encode(x)[0], lexical_features(x)])))
        in_band += head.threshold - head.band <= first <= head.block + head.band
        del p
    parts["share of sentences reading the deep tail"] = round(in_band / len(sentences), 4)
    print("median ms a sentence, by part:")
    for k, v in parts.items():
        print(f"  {k:48} {v:8.3f}")
    return parts


def _sentences(text: str) -> list[str]:
    from archivist.screening import sentence_end

    out, rest = [], text
    while (cut := sentence_end(rest)) is not None:
        out.append(rest[:cut].strip())
        rest = rest[cut:]
    if rest.strip():
        out.append(rest.strip())
    return [x for x in out if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "safety")
    ap.add_argument("--home", type=Path, default=ROOT / ".cache" / "safety-build")
    ap.add_argument("--threads", default="1,2", help="thread counts to compare, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="also profile one output pass (cProfile, onnxruntime)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "safety-latency.json")
    args = ap.parse_args(argv)
    try:
        counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        print(f"--threads takes numbers separated by commas, not {args.threads!r}", file=sys.stderr)
        return 2
    if not (args.data / "xstest_prompts.csv").exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    sets = load_sets(args.data)
    s = screener(args.home)
    learned = learned_of(s)
    if learned.encoder is None:
        print(f"the learned head is not available ({learned.error}): nothing to time", file=sys.stderr)
        return 1
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; cpus {os.cpu_count()}")
    work = {"xstest input (an item)": (sets["xstest"], Stage.INPUT),
            "toxicity output (a sentence)": (sets["toxicity"], Stage.OUTPUT)}
    lat: dict[str, dict[int, list[float]]] = {k: {n: [] for n in counts} for k in work}
    medians: dict[str, dict[int, list[float]]] = {k: {n: [] for n in counts} for k in work}
    decided: dict[str, dict[int, list]] = {k: {} for k in work}
    probs: dict[int, np.ndarray] = {}
    check_texts = [t for t, _ in sets["xstest"]] + [t for t, _ in sets["toxicity"][:300]]
    for r in range(args.rounds):
        order = counts if r % 2 == 0 else counts[::-1]
        for n in order:
            set_threads(learned, n)
            s.screen("warm up the models.", Stage.INPUT)
            for name, (items, stage) in work.items():
                got, what = one_pass(s, items, stage)
                lat[name][n] += got
                medians[name][n].append(round(statistics.median(got), 3))
                decided[name].setdefault(n, what)
                if decided[name][n] != what:
                    print(f"verdicts moved between rounds on {n} threads ({name})", file=sys.stderr)
            if r == 0:
                probs[n] = head_scores(learned, check_texts)
            print(f"round {r + 1}, {n} thread(s): " + ", ".join(
                f"{name} p50 {medians[name][n][-1]:.2f} ms" for name in work), flush=True)
    same_verdicts = all(len({json.dumps(v, default=str) for v in d.values()}) == 1 for d in decided.values())
    base = probs[counts[0]]
    max_diff = max(float(np.abs(p - base).max()) for p in probs.values())
    load1 = os.getloadavg()
    print(f"verdicts identical across thread counts: {same_verdicts}; head probabilities, largest difference "
          f"over {len(check_texts)} texts: {max_diff:g}")
    print(f"{'what':30} {'threads':>7} {'p50 ms':>7} {'p95 ms':>7} {'n':>6}  round medians")
    table = []
    for name in work:
        for n in counts:
            q = quantiles(lat[name][n])
            table.append({"what": name, "threads": n, **q, "round_p50": medians[name][n]})
            print(f"{name:30} {n:7d} {q['p50']:7.2f} {q['p95']:7.2f} {q['n']:6d}  {medians[name][n]}")
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    result: dict[str, Any] = {"table": table, "same_verdicts": same_verdicts, "max_prob_diff": max_diff,
                              "load_average_start": load0, "load_average_end": load1, "rounds": args.rounds,
                              "cpu": cpu_name()}
    if args.profile:
        set_threads(learned, counts[-1])
        folder = args.out.parent / "safety-profile"
        folder.mkdir(parents=True, exist_ok=True)
        result["profile"] = profile(s, sets["toxicity"][:300], learned, folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
