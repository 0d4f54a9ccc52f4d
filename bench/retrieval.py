"""Retrieval benchmark: quality on XQuAD and vector-search latency at 10k/100k/1M chunks.

    .venv/bin/python bench/retrieval.py [--out bench/results/retrieval.json] [--sizes 10000,100000,1000000]

Quality: each of XQuAD's 48 English articles becomes one text file (named by its title),
indexed by the real pipeline (loader, chunker, ONNX encoder, SQLite/FTS5, FAISS). A
question's hit is a retrieved chunk containing one of its gold answers. Reported for
dense, keyword and hybrid search (recall@1/5/10, MRR@10), for a grid of fusion weights,
with the encoder indexing runs (fp32 since embedder recipe 5), and dense only for the
quantized encoders the app no longer ships (mixed, int8; bench/quantized_encoders.py),
each checked against the bar they were held to: recall within half a point of fp32.

Latency: synthetic unit vectors (a mixture of 4,096 Gaussian clusters, like real text
embeddings, unlike uniform noise), exact search (IndexFlatIP) against the IVF index the
plugin switches to, with the IVF's recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ROOT.parent / "shared" / "data" / "xquad" / "xquad.en.json"
WHEELS = ROOT / ".cache" / "wheels"


def load_xquad(folder: Path) -> list[dict]:
    data = json.loads(XQUAD.read_text("utf-8"))["data"]
    questions = []
    for article in data:
        name = article["title"].replace("/", "_") + ".txt"
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (folder / name).write_text(text, "utf-8")
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                questions.append({"q": qa["question"], "answers": sorted({a["text"] for a in qa["answers"]})})
    return questions


def metrics(ranked_texts: list[list[str]], questions: list[dict]) -> dict[str, float]:
    r1 = r5 = r10 = mrr = 0.0
    for texts, q in zip(ranked_texts, questions):
        rank = next((i for i, t in enumerate(texts[:10], 1) if any(a in t for a in q["answers"])), None)
        if rank is not None:
            r1 += rank <= 1
            r5 += rank <= 5
            r10 += rank <= 10
            mrr += 1.0 / rank
    n = len(questions)
    return {"recall@1": r1 / n, "recall@5": r5 / n, "recall@10": r10 / n, "mrr@10": mrr / n}


def quality(tmp: Path, overlap: int | None = None) -> dict:
    from archivist import fuse
    from archivist.ranking import DENSE_SHARE, DENSE_SHARE_LOW
    from archivist_faiss import fusion
    from archivist_faiss.index import open_index
    from archivist_models.embedder import build_embedder
    from archivist_models.embeddings import Embedder

    docs = tmp / "xquad"
    docs.mkdir()
    questions = load_xquad(docs)
    home = tmp / "home"
    enc = build_embedder(home / "models" / "embedder-minilm-l6-v2", WHEELS)
    sys.path.insert(0, str(ROOT / "bench"))
    from quantized_encoders import add_quantized_variants

    add_quantized_variants(enc)
    ix = open_index(home, **({} if overlap is None else {"overlap_tokens": overlap}))
    t0 = time.perf_counter()
    report = ix.index([docs])
    index_s = time.perf_counter() - t0
    n_chunks = ix._chunk_count()
    with ix.Session() as s:
        from sqlalchemy import select

        from archivist_faiss.store import ChunkRow

        texts = dict(s.execute(select(ChunkRow.id, ChunkRow.text)).all())
    depth = 50
    qvecs = ix.embedder.embed([q["q"] for q in questions])
    vectors = ix.ensure_vectors()
    dense_scored = [vectors.search(v, depth) for v in qvecs]
    keyword_scored = [ix.keyword(q["q"], depth) for q in questions]
    dense = [[i for i, _ in r] for r in dense_scored]
    keyword = [[i for i, _ in r] for r in keyword_scored]

    def as_texts(rankings):
        return [[texts[i] for i in r[:10]] for r in rankings]

    results = {"dense": metrics(as_texts(dense), questions), "keyword": metrics(as_texts(keyword), questions)}
    grid = {}
    for rrf_k in (5, 10, 60):
        for kw in (0.5, 1.0, 1.5):
            fused = [[i for i, _ in fusion.rrf([(d, 1.0), (k, kw)], k=rrf_k)] for d, k in zip(dense, keyword)]
            grid[f"rrf k={rrf_k} d=1 kw={kw}"] = metrics(as_texts(fused), questions)
    fused = [[i for i, _ in fuse(d, k)] for d, k in zip(dense_scored, keyword_scored)]
    results["hybrid"] = metrics(as_texts(fused), questions)
    # end-to-end latency of Index.search (query embedding + FAISS + FTS5 + fusion + rows)
    lat = []
    for q in questions[:200]:
        t = time.perf_counter()
        ix.search(q["q"], 5)
        lat.append((time.perf_counter() - t) * 1000)
    # The index ran the recipe's default encoder (fp32) on passages with their headers;
    # re-embed the passage texts alone with fp32 and the quantized encoders, dense only,
    # to compare the encoders on equal terms.
    import faiss

    ids = sorted(texts)
    for variant in ("fp32", "mixed", "int8"):
        other = Embedder(enc, variant=variant)
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(384))
        flat.add_with_ids(other.embed([texts[i] for i in ids]), np.array(ids, dtype=np.int64))
        _, found = flat.search(other.embed([q["q"] for q in questions]), 10)
        results[f"dense_{variant}"] = metrics([[texts[i] for i in row if i >= 0] for row in found], questions)
    ix.close()
    # The bar for a quantized encoder: dense recall@1/5/10 within half a point
    # (0.005) of full precision, each of them.
    checks = {}
    for name, key in (("mixed", "dense_mixed"), ("int8", "dense_int8")):
        points = {m: round(100 * (results[key][m] - results["dense_fp32"][m]), 2)
                  for m in ("recall@1", "recall@5", "recall@10")}
        checks[name] = {"points_vs_fp32": points, "passes": all(v >= -0.5 for v in points.values())}
    return {"questions": len(questions), "documents": len(report.indexed), "chunks": n_chunks,
            "overlap_tokens": ix.overlap_tokens,
            "index_seconds": round(index_s, 1), "weights": {"dense_share": DENSE_SHARE,
                                                             "dense_share_low": DENSE_SHARE_LOW,
                                                             "meta_weight": fusion.META_WEIGHT},
            "results": results, "fusion_grid": grid,
            "encoder": ix.embedder.variant, "recall_checks": checks,
            "search_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))}}


def synthetic(n: int, dim: int = 384, clusters: int = 4096, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        out[s:s + m] = centres[rng.integers(0, clusters, m)] + 0.6 * rng.standard_normal((m, dim), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def batches_of(data: np.ndarray, step: int = 50_000) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """``VectorIndex.rebuild``'s source over ``data``: (ids, vectors) batches of ``step`` rows."""

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s in range(0, len(data), step):
            yield np.arange(s, min(len(data), s + step), dtype=np.int64), data[s:s + step]

    return batches


def latency(sizes: list[int], queries: int = 200) -> list[dict]:
    import faiss

    from archivist_faiss.vectors import VectorIndex

    rows = []
    for n in sizes:
        data = synthetic(n)
        rng = np.random.default_rng(1)
        qs = data[rng.integers(0, n, queries)] + 0.3 * rng.standard_normal((queries, 384), dtype=np.float32) / np.sqrt(384) * 6
        qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)

        row = {"chunks": n}
        for kind, threshold in (("exact", 10**12), ("ivf", 1)):
            vi = VectorIndex(Path(tempfile.gettempdir()) / "unused.faiss", 384, approx_threshold=threshold)
            t0 = time.perf_counter()
            vi.rebuild(n, batches_of(data))
            build = time.perf_counter() - t0
            nq = queries if kind == "ivf" or n <= 100_000 else 50
            lat, got = [], []
            for q in qs[:nq]:
                t = time.perf_counter()
                res = vi.search(q, 10)
                lat.append((time.perf_counter() - t) * 1000)
                got.append([i for i, _ in res])
            row[kind] = {"build_s": round(build, 2), "p50_ms": round(float(np.percentile(lat, 50)), 3),
                         "p95_ms": round(float(np.percentile(lat, 95)), 3), "queries": nq}
            if kind == "ivf":
                row[kind]["nlist"] = int(vi.index.nlist)
                row[kind]["nprobe"] = int(vi.index.nprobe)
                exact = faiss.IndexFlatIP(384)
                exact.add(data)
                _, truth = exact.search(qs, 10)
                rec = np.mean([len(set(g) & set(t.tolist())) / 10 for g, t in zip(got, truth)])
                row[kind]["recall@10_vs_exact"] = round(float(rec), 4)
                del exact
            del vi
        rows.append(row)
        del data
    return rows


# -- near-identical documents: contextual headers and fusion (issue #13) ---------------------

REPORTS = ROOT.parent / "shared" / "data" / "reports"
REPORT_QUESTIONS = ROOT / "bench" / "reports_questions.json"
CACHE = ROOT / ".cache" / "bench-retrieval"
DEPTH = 50


def cached_index(name: str, docs: Path, headers: bool) -> Any:
    """The index of ``docs`` built with or without passage headers, kept under
    ``.cache/bench-retrieval/`` between runs (40 long PDFs take minutes on two cores)."""
    from archivist_faiss.index import open_index
    from archivist_models.embedder import build_embedder

    home = CACHE / f"{name}-{'headers' if headers else 'plain'}"
    build_embedder(home / "models" / "embedder-minilm-l6-v2", WHEELS)
    done = home / "indexed.json"
    ix = open_index(home, chunk_headers=headers, isolate=False)
    if not done.exists():
        t0 = time.perf_counter()
        report = ix.index([docs])
        done.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "files": len(report.indexed),
                                    "skipped": [s.to_dict() for s in report.skipped]}))
    return ix


def fusions(dense: list[tuple[int, float]], keyword: list[tuple[int, float]],
            doc_of: dict[int, str] | None = None) -> dict[str, list[int]]:
    """Every fusion measured, each a ranking of ids. The per-query ones (issue #13, second
    round) set the cosine's share from how far the two sides agree: ``overlap`` is the
    share of passages the two top tens have in common, ``doc agreement`` the share of the
    dense top ten from the document of the keyword side's first hit (``doc_of``: passage
    id -> file); ``within kw top 2`` lets the fused order change only which of the keyword
    side's two first hits comes first. "shipped" is :func:`archivist.fuse` (its share from
    the overlap, between 0.4 and 0.5)."""
    from archivist import fuse
    from archivist_faiss import fusion

    d_ids, k_ids = [i for i, _ in dense], [i for i, _ in keyword]
    overlap = len(set(d_ids[:10]) & set(k_ids[:10])) / 10
    gated = {f"dense share {share}": [i for i, _ in fuse(dense, keyword, share)] for share in (0.2, 0.4)}
    gated["fixed share 0.5 (before)"] = [i for i, _ in fuse(dense, keyword, 0.5)]
    gated["share .5*overlap"] = [i for i, _ in fuse(dense, keyword, 0.5 * overlap)]
    if doc_of is not None:  # every method needs an entry for every query (recall() pairs them by position)
        agree = 1.0
        if k_ids and d_ids:
            agree = sum(doc_of[i] == doc_of[k_ids[0]] for i in d_ids[:10]) / min(10, len(d_ids))
        gated["share .5*doc agreement"] = [i for i, _ in fuse(dense, keyword, 0.5 * agree)]
    shipped = [i for i, _ in fuse(dense, keyword)]
    head = set(k_ids[:2])
    gated["within kw top 2"] = [i for i in shipped if i in head] + [i for i in shipped if i not in head]
    out = {"dense": d_ids, "keyword": k_ids}
    for k in (5, 60):
        out[f"rrf k={k}"] = [i for i, _ in fusion.rrf([(d_ids, 1.0), (k_ids, 1.0)], k=k)]
    for alpha in (0.3, 0.5, 0.7):
        out[f"minmax a={alpha}"] = [i for i, _ in fusion.convex([(dense, alpha), (keyword, 1 - alpha)], "minmax")]
    out["dbsf"] = [i for i, _ in fusion.convex([(dense, 0.5), (keyword, 0.5)], "dbsf")]
    out.update(gated)
    out["shipped"] = shipped
    return out


def recall(ranked: list[list[int]], good: Callable[[int, int], bool]) -> dict[str, float]:
    r1 = r5 = r10 = 0
    for n, ids in enumerate(ranked):
        rank = next((r for r, i in enumerate(ids[:10], 1) if good(n, i)), None)
        if rank is not None:
            r1 += rank <= 1
            r5 += rank <= 5
            r10 += rank <= 10
    total = len(ranked)
    return {"recall@1": r1 / total, "recall@5": r5 / total, "recall@10": r10 / total}


def compare(name: str, docs: Path, queries: list[str], good_for: Callable[[dict[int, tuple[str, str]]],
            Callable[[int, int], bool]]) -> dict:
    """Dense, keyword and every fusion, with passage headers off and on."""
    from sqlalchemy import select

    from archivist import fuse, named_first
    from archivist_faiss.store import ChunkRow, File

    out: dict = {}
    for headers in (False, True):
        ix = cached_index(name, docs, headers)
        with ix.Session() as s:
            rows = {i: (p, t) for i, p, t in s.execute(
                select(ChunkRow.id, File.path, ChunkRow.text).join(File, ChunkRow.file_id == File.id)).all()}
        qvecs = ix.embedder.embed(queries)
        vectors = ix.ensure_vectors()
        runs: dict[str, list[list[int]]] = {}
        doc_of = {i: p for i, (p, _) in rows.items()}
        file_of = ix.searcher.files_of(list(rows))
        for q, v in zip(queries, qvecs):
            dense, keyword = vectors.search(v, DEPTH), ix.keyword(q, DEPTH)
            for method, ids in fusions(dense, keyword, doc_of).items():
                runs.setdefault(method, []).append(ids)
            # What Search.search does after ranking: a question naming its document by an
            # identifier gets that document's passages first (archivist.ranking).
            named = ix.searcher.named_files(q)
            for method, ranked in (("dense, named first", dense), ("keyword, named first", keyword),
                                   ("fused, named first", fuse(dense, keyword))):
                runs.setdefault(method, []).append([i for i, _ in named_first(ranked, file_of, named)])
            # And the search users get, through the plugin's own code: the three modes of
            # Search.search (the hybrid ranks named files whole, Search.within).
            for mode in ("dense", "keyword", "hybrid"):
                runs.setdefault(f"Search.search {mode}", []).append(
                    [h.chunk_id for h in ix.searcher.search(q, DEPTH, mode=mode)])
        good = good_for(rows)
        out["headers" if headers else "plain"] = {
            "chunks": len(rows), "index": json.loads((CACHE / f"{name}-{'headers' if headers else 'plain'}"
                                                      / "indexed.json").read_text()),
            "results": {method: recall(ranked, good) for method, ranked in runs.items()}}
        ix.close()
    return out


def reports_quality() -> dict:
    data = json.loads(REPORT_QUESTIONS.read_text("utf-8"))
    questions = data["questions"]

    def good_for(rows: dict[int, tuple[str, str]]) -> Callable[[int, int], bool]:
        def good(n: int, i: int) -> bool:
            q = questions[n]
            path, text = rows[i]
            return Path(path).name in q["files"] and re.search(q["pattern"], text, re.I) is not None
        return good

    result = compare("reports", REPORTS, [q["q"] for q in questions], good_for)
    result["questions"] = len(questions)
    result["by_family"] = {f: sum(q["family"] == f for q in questions) for f in ("ntsb", "nih")}
    return result


def xquad_quality() -> dict:
    docs = CACHE / "xquad-docs"
    docs.mkdir(parents=True, exist_ok=True)
    questions = load_xquad(docs)

    def good_for(rows: dict[int, tuple[str, str]]) -> Callable[[int, int], bool]:
        def good(n: int, i: int) -> bool:
            return any(a in rows[i][1] for a in questions[n]["answers"])
        return good

    result = compare("xquad", docs, [q["q"] for q in questions], good_for)
    result["questions"] = len(questions)
    return result


def print_comparison(title: str, result: dict) -> None:
    print(f"\n{title}: {result['questions']} questions")
    print(f"{'method':<26}{'plain R@1':>10}{'R@5':>7}{'R@10':>7}{'headers R@1':>13}{'R@5':>7}{'R@10':>7}")
    for method in result["plain"]["results"]:
        p, h = result["plain"]["results"][method], result["headers"]["results"][method]
        print(f"{method:<26}{p['recall@1']:>10.3f}{p['recall@5']:>7.3f}{p['recall@10']:>7.3f}"
              f"{h['recall@1']:>13.3f}{h['recall@5']:>7.3f}{h['recall@10']:>7.3f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--overlap", type=int, default=None,
                    help="chunk overlap in word-pieces (default: the index's, 16)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--compare", action="store_true",
                    help="passage headers (in the keyword index) off/on x dense, keyword and fusions, on the reports and XQuAD (cached indexes)")
    args = ap.parse_args()
    out: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}}
    if not args.skip_quality:
        if not XQUAD.exists():
            print(f"{XQUAD} not found", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            out["quality"] = quality(Path(tmp), args.overlap)
        qd = out["quality"]
        print(f"\nXQuAD en: {qd['questions']} questions, {qd['documents']} articles, {qd['chunks']} chunks "
              f"(overlap {qd['overlap_tokens']} word-pieces) "
              f"(indexed in {qd['index_seconds']} s)")
        print(f"{'mode':<28}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR@10':>8}")
        for name, m in list(qd["results"].items()) + [(k, v) for k, v in qd["fusion_grid"].items()]:
            print(f"{name:<28}{m['recall@1']:>8.3f}{m['recall@5']:>8.3f}{m['recall@10']:>8.3f}{m['mrr@10']:>8.3f}")
        print(f"(dense and hybrid ran the index's encoder, {qd['encoder']}, on the passages alone, headers in the keyword index; "
              "dense_fp32, dense_mixed and dense_int8 re-embedded the passages alone)")
        for name, c in qd["recall_checks"].items():
            print(f"{name} encoder, dense recall vs fp32 (points): "
                  + ", ".join(f"{k} {v:+.2f}" for k, v in c["points_vs_fp32"].items())
                  + f" -> {'within' if c['passes'] else 'NOT within'} half a point")
        print(f"Index.search end to end (k=5): p50 {qd['search_ms']['p50']:.1f} ms, p95 {qd['search_ms']['p95']:.1f} ms")
    if args.compare:
        out["reports"] = reports_quality()
        print_comparison("Reports (NTSB + NIH, near-identical documents)", out["reports"])
        out["xquad_compare"] = xquad_quality()
        print_comparison("XQuAD en", out["xquad_compare"])
    if not args.skip_latency:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        out["latency"] = latency(sizes)
        print(f"\n{'chunks':>9} {'exact p50':>10} {'exact p95':>10} {'ivf p50':>9} {'ivf p95':>9} {'ivf R@10':>9} {'nlist/nprobe':>13} {'ivf build s':>11}")
        for r in out["latency"]:
            e, v = r["exact"], r["ivf"]
            print(f"{r['chunks']:>9} {e['p50_ms']:>10.2f} {e['p95_ms']:>10.2f} {v['p50_ms']:>9.2f} {v['p95_ms']:>9.2f} "
                  f"{v['recall@10_vs_exact']:>9.3f} {str(v['nlist']) + '/' + str(v['nprobe']):>13} {v['build_s']:>11.1f}")
    out["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
