"""How far the encoders' results move when the float arithmetic differs by one ulp.

    .venv/bin/python bench/cpu_independence.py [--noise 1e-7] [--repeats 3]
                                               [--out bench/results/cpu_independence.json]

Another processor runs the same ONNX graph through other kernels: GELU, softmax, exp,
LayerNorm and the float GEMMs have their own AVX2, AVX-512, NEON and Apple silicon
versions in onnxruntime's MLAS. They differ by about one unit in the last place (ulp),
float32's 1.2e-7 relative. This machine has one instruction set, so the difference is
simulated instead. Each encoder is split at its layer boundaries, and the hidden states
get relative Gaussian noise of ``--noise`` (default 1e-7, about one ulp) before each
layer. The outputs are then compared with the noise-free run, ``--repeats`` times with
fresh noise.

- **Safety:** the head's unsafe score for our own training lines (every 5th line), as
  the filter computes it (4-layer cut, the deep head averaged in near the threshold).
  fp32 is what ships. int8+attention is what shipped until embedder recipe 5: every
  MatMul and the attention QKV in int8, made here with onnxruntime's quantizer, which
  builds the same nodes.
- **Search:** query-passage cosine on XQuAD (240 paragraphs, every 4th question), and
  whether each question's top 1, top-5 set and top-5 order stay the same. fp32 ships;
  mixed and int8 are the variants recipe 4 shipped (bench/quantized_encoders.py).

**Cost:** the median time to encode one text with the 4-layer cut the safety head reads,
fp32 against int8+attention, measured in alternating rounds in the same process (XSTest
prompts where ``../shared/data/safety`` is present, else the training lines).

A test cannot do this comparison across CPUs. The committed fixtures do it instead:
``tests/safety/test_cpu_independence.py`` and
``tests/retrieval/test_cpu_independence.py`` hold the shipped encoders to scores with a
tolerance chosen from this table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".cache" / "wheels"
XQUAD = ROOT.parent / "shared" / "data" / "xquad" / "xquad.en.json"
XSTEST = ROOT.parent / "shared" / "data" / "safety" / "xstest_prompts.csv"
TRAINING = ROOT / "plugins" / "archivist_safety" / "training"
sys.path.insert(0, str(ROOT / "bench"))


def session(graph: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])


class Layered:
    """An encoder run one transformer layer at a time, noise added between layers."""

    def __init__(self, model: Path, layers: int, tokenizer: Any) -> None:
        from archivist_safety.encoder import tail_model, truncated_model

        self.first = session(truncated_model(model, 1))
        self.rest = [session(tail_model(model, i, i + 1)) for i in range(1, layers)]
        self.tokenizer = tokenizer

    def hidden(self, text: str, noise: float, rng: np.random.Generator, upto: int | None = None) -> np.ndarray:
        ids = np.array([self.tokenizer.encode(text).ids], dtype=np.int64)
        mask = np.ones_like(ids)
        h = self.first.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        for s in self.rest[: None if upto is None else upto - 1]:
            if noise:
                h = (h * (1 + noise * rng.standard_normal(h.shape))).astype(np.float32)
            h = s.run(None, {"hidden": h, "attention_mask": mask})[0]
        return h

    def pooled(self, text: str, noise: float, rng: np.random.Generator, upto: int | None = None) -> np.ndarray:
        v = self.hidden(text, noise, rng, upto)[0].mean(axis=0)
        return (v / np.linalg.norm(v)).astype(np.float32)


def encoder_folder(tmp: Path) -> Path:
    from quantized_encoders import add_quantized_variants

    from archivist_models.embedder import build_embedder

    folder = build_embedder(tmp / "embedder-minilm-l6-v2", WHEELS)
    add_quantized_variants(folder)
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # what the safety filter read until recipe 5: every MatMul and the attention in int8
    quantize_dynamic(str(folder / "model.onnx"), str(folder / "model.int8att.onnx"), weight_type=QuantType.QUInt8,
                     per_channel=True, op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return folder


def training_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(TRAINING.glob("*.txt")):
        rows = [t.strip() for t in path.read_text("utf-8").splitlines()]
        lines += [t for t in rows if t and not t.startswith("#")]
    return lines[::5]


def safety_scores(enc: Layered, texts: list[str], noise: float, rng: np.random.Generator) -> np.ndarray:
    from archivist_safety.classifier import Head, lexical_features

    head = Head.load()
    out = []
    for text in texts:
        lexical = lexical_features(text)
        cut = enc.pooled(text, noise, rng, upto=head.encoder_layers)
        probs = head.probabilities(np.hstack([cut, lexical]))
        if head.deep_layers is not None and abs(head.unsafe(probs) - head.threshold) <= head.band:
            deep = enc.pooled(text, noise, rng, upto=head.deep_layers)
            probs = (probs + head.probabilities(np.hstack([deep, lexical]), deep=True)) / 2
        out.append(head.unsafe(probs))
    return np.array(out)


def measure(run: Callable[[float, np.random.Generator], np.ndarray], noise: float, repeats: int,
            compare: Callable[[np.ndarray, np.ndarray], dict[str, float]]) -> dict[str, float]:
    base = run(0.0, np.random.default_rng(0))
    rows = [compare(base, run(noise, np.random.default_rng(seed + 1))) for seed in range(repeats)]
    return {k: float(max(r[k] for r in rows)) if k.startswith("max") else float(np.mean([r[k] for r in rows]))
            for k in rows[0]}


def cut_latency(folder: Path, tok: Any, texts: list[str], rounds: int = 5) -> dict[str, dict[str, float]]:
    """Median and p95 ms to encode one text with each 4-layer cut, rounds alternating."""
    import time

    from archivist_safety.encoder import truncated_model

    cuts = {"fp32 (shipped)": session(truncated_model(folder / "model.onnx", 4)),
            "int8+attention": session(truncated_model(folder / "model.int8att.onnx", 4))}
    feeds = []
    for text in texts:
        ids = np.array([tok.encode(text).ids], dtype=np.int64)
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    times: dict[str, list[float]] = {name: [] for name in cuts}
    for _ in range(rounds):
        for name, cut in cuts.items():
            for feed in feeds:
                t = time.perf_counter()
                cut.run(None, feed)
                times[name].append((time.perf_counter() - t) * 1000)
    return {name: {"p50_ms": float(np.median(v)), "p95_ms": float(np.quantile(v, 0.95))} for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    from tokenizers import Tokenizer

    from archivist_safety.classifier import Head

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, default=1e-7, help="relative noise before each layer (1e-7: ~1 ulp)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cpu_independence.json")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {"noise": args.noise, "repeats": args.repeats, "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = encoder_folder(Path(tmp))
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=128)
        threshold = Head.load().threshold
        texts = training_lines()

        def safety_compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
            d = np.abs(a - b)
            return {"max_abs_score_change": float(d.max()), "p99_abs_score_change": float(np.quantile(d, 0.99)),
                    "verdicts_flipped": float(((a >= threshold) != (b >= threshold)).sum())}

        print(f"safety: {len(texts)} training lines, noise {args.noise:g}, {args.repeats} repeats")
        print(f"{'encoder':16}{'max |d score|':>15}{'p99':>11}{'flips':>7}")
        results["safety"] = {}
        for name, file in (("fp32 (shipped)", "model.onnx"), ("int8+attention", "model.int8att.onnx")):
            enc = Layered(folder / file, 6, tok)
            row = measure(partial(safety_scores, enc, texts), args.noise, args.repeats, safety_compare)
            results["safety"][name] = {"texts": len(texts), **row}
            print(f"{name:16}{row['max_abs_score_change']:15.2e}{row['p99_abs_score_change']:11.2e}"
                  f"{row['verdicts_flipped']:7.1f}")
        if XSTEST.exists():
            import csv

            with open(XSTEST, encoding="utf-8") as f:
                prompts = [r["prompt"] for r in csv.DictReader(f)]
        else:
            prompts = texts
        results["cut_latency"] = cut_latency(folder, tok, prompts)
        print(f"\ncost: the 4-layer cut on {len(prompts)} texts, {os.getloadavg()[0]:.2f} load")
        for name, row in results["cut_latency"].items():
            print(f"{name:16} p50 {row['p50_ms']:.2f} ms  p95 {row['p95_ms']:.2f} ms")
        if not XQUAD.exists():
            print(f"search: skipped, {XQUAD} not found")
        else:
            data = json.loads(XQUAD.read_text("utf-8"))["data"]
            passages = [p["context"] for a in data for p in a["paragraphs"]]
            questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]][::4]
            tok.enable_truncation(max_length=256)

            def search_compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
                ta, tb = np.argsort(-a, axis=1)[:, :5], np.argsort(-b, axis=1)[:, :5]
                return {"max_abs_score_change": float(np.abs(a - b).max()),
                        "p99_abs_score_change": float(np.quantile(np.abs(a - b), 0.99)),
                        "top1_changed": float((ta[:, 0] != tb[:, 0]).mean()),
                        "top5_set_changed": float(np.mean([set(x) != set(y) for x, y in zip(ta, tb)])),
                        "top5_order_changed": float((ta != tb).any(axis=1).mean())}

            print(f"\nsearch: XQuAD, {len(passages)} passages, {len(questions)} questions")
            print(f"{'encoder':16}{'max |d score|':>15}{'p99':>11}{'top1':>8}{'top5 set':>10}{'top5 order':>12}")
            results["search"] = {}
            for name, file in (("fp32 (shipped)", "model.onnx"), ("mixed", "model.mixed.onnx"),
                               ("int8", "model.int8.onnx")):
                enc = Layered(folder / file, 6, tok)

                def scores(noise: float, rng: np.random.Generator, enc: Layered = enc) -> np.ndarray:
                    p = np.stack([enc.pooled(t, noise, rng) for t in passages])
                    q = np.stack([enc.pooled(t, noise, rng) for t in questions])
                    return q @ p.T

                row = measure(scores, args.noise, args.repeats, search_compare)
                results["search"][name] = {"passages": len(passages), "questions": len(questions), **row}
                print(f"{name:16}{row['max_abs_score_change']:15.2e}{row['p99_abs_score_change']:11.2e}"
                      f"{row['top1_changed']:8.1%}{row['top5_set_changed']:10.1%}{row['top5_order_changed']:12.1%}")
    results["load_avg_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
