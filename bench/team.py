"""PostgreSQL collections (plugins/archivist_team): search latency, HNSW recall, XQuAD recall.

    .venv/bin/python bench/team.py [--size 50000] [--queries 200] [--out bench/results/team.json]
                                   [--url postgresql://...] [--no-faiss]

Without ``--url`` a throw-away server is started with scripts/local-postgres.sh in a
temporary folder (PostgreSQL 15 + pgvector 0.8.6) and stopped at the end.

1. XQuAD quality: each of XQuAD's 48 English articles is one text file, indexed by the
   plugin's real pipeline (the built-in loaders, its chunker, the ONNX encoder, one
   transaction per file). A question's hit is a returned passage containing one of its
   gold answers; recall@1/5/10 for hybrid, dense and keyword search, and the same
   questions against the FAISS plugin's index of the same files (``--no-faiss`` skips it).
2. Latency: ``TeamCollection.search`` (hybrid, query embedding included) on the XQuAD
   collection, p50/p95 over the questions.
3. HNSW at scale: ``--size`` passages made from the real XQuAD passage vectors by
   perturbation (each copy is a real vector plus Gaussian noise of norm about 0.35 per
   vector, renormalized: cosine about 0.94 to its source, so the copies form tight
   clusters around real text), loaded with COPY, the HNSW
   index built after loading (m=16, ef_construction=64, pgvector's defaults). Queries are
   real question embeddings. Reported: build time; dense-search latency p50/p95 through
   SQL (``ORDER BY embedding <=> q LIMIT 10``) and recall@10 of HNSW against exact
   search (the same query with index scans off) for ef_search 40 (pgvector's default),
   100 and 200 (the plugin's); and the plugin's whole hybrid search (query embedding,
   HNSW, BM25 over full-text matches, fusion, fetching the passages) on 50 questions.
   The real vectors are the 235 XQuAD passages plus every sentence of the articles of
   five words or more (1,424 in all), so each makes about 35 copies at 50,000.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ROOT.parent / "shared" / "data" / "xquad" / "xquad.en.json"
WHEELS = ROOT / ".cache" / "wheels"


def load_xquad(folder: Path) -> list[dict[str, Any]]:
    data = json.loads(XQUAD.read_text("utf-8"))["data"]
    questions = []
    for article in data:
        name = article["title"].replace("/", "_") + ".txt"
        (folder / name).write_text("\n\n".join(p["context"] for p in article["paragraphs"]), "utf-8")
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                questions.append({"q": qa["question"], "answers": sorted({a["text"] for a in qa["answers"]})})
    return questions


def recall(ranked: list[list[str]], questions: list[dict[str, Any]]) -> dict[str, float]:
    out = {"r1": 0.0, "r5": 0.0, "r10": 0.0}
    for texts, q in zip(ranked, questions):
        rank = next((i for i, t in enumerate(texts[:10], 1) if any(a in t for a in q["answers"])), None)
        if rank is not None:
            out["r1"] += rank <= 1
            out["r5"] += rank <= 5
            out["r10"] += rank <= 10
    return {k: round(v / len(questions), 4) for k, v in out.items()}


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


def start_server(folder: Path) -> tuple[str, Path]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.chmod(folder, 0o755)  # (under root the server runs as the postgres user)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "local-postgres.sh"), "start", str(folder / "pg"), str(port)],
                         capture_output=True, text=True, check=True).stdout
    url = re.search(r"'(postgresql://[^']+)'", out)
    assert url, out
    return url.group(1), folder / "pg"


def stop_server(folder: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "local-postgres.sh"), "stop", str(folder)], capture_output=True)


def ray_scaling(tmp: Path, admin_url: tuple[str, str | None], member: str, encoder_path: Path, home: Path,
                loaders: Any, copies: int) -> dict[str, Any]:
    """Passages a second indexing ``copies`` copies of XQuAD's 48 articles: in this process
    (the plugin's own sync, the peer), then with Ray on this machine with 1 and 2 workers.

    Each run writes into a collection of its own, so each embeds everything. Ray's start
    (the instance, the workers loading the encoder) is inside the Ray runs' times: that is
    what a user waits for.
    """
    import ray

    from archivist_team import schema
    from archivist_team.collection import TeamCollection
    from archivist_team.connection import connect
    from archivist_team.encoder import LazyEncoder
    from archivist_team.spread import sync_with_ray

    docs = tmp / "ray-docs"
    docs.mkdir()
    one = tmp / "ray-one"
    one.mkdir()
    load_xquad(one)
    for c in range(copies):
        for f in sorted(one.iterdir()):  # each copy its own text (a line naming it), so its own hash
            (docs / f"{c}-{f.name}").write_text(f"Copy {c} of {f.stem}.\n\n" + f.read_text("utf-8"), "utf-8")
    out: dict[str, Any] = {"files": copies * 48}
    runs = [("in_process", None), ("ray_1_worker", 1), ("ray_2_workers", 2)]
    for name, workers in runs:
        collection_name = f"ray_{name}"
        owner = connect(*admin_url)
        try:
            schema.create_collection(owner, collection_name, "bench_scale")
        finally:
            owner.close()
        encoder = LazyEncoder(home, path=encoder_path)
        collection = TeamCollection(collection_name, member, "bench", encoder=encoder, loaders=lambda: loaders)
        t = time.perf_counter()
        if workers is None:
            report = collection.sync([collection.add_source(docs)])
        else:
            report = sync_with_ray(collection, [collection.add_source(docs)], "local", workers=workers)
            ray.shutdown()
        seconds = time.perf_counter() - t
        collection.close()
        out[name] = {"workers": workers or 0, "passages": report.passages, "seconds": round(seconds, 1),
                     "passages_per_s": round(report.passages / seconds, 1)}
        print(f"{name}: {report.passages} passages in {seconds:.1f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="archivist-bench-team-"))
    try:
        return run(argv, tmp)
    finally:
        if (tmp / "pg" / "data").is_dir():
            stop_server(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)


def run(argv: list[str] | None, tmp: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=50_000, help="passages for the HNSW part")
    parser.add_argument("--queries", type=int, default=200, help="queries for latency and recall@10")
    parser.add_argument("--url", help="an existing database (its user must be allowed to create tables and roles)")
    parser.add_argument("--questions", type=int, default=0, help="score only the first N XQuAD questions (0: all)")
    parser.add_argument("--no-faiss", action="store_true", help="skip the FAISS plugin's XQuAD run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "team.json")
    parser.add_argument("--maintenance-work-mem", default="512MB",
                        help="PostgreSQL's memory for the HNSW build (the graph should fit: about 2GB a million)")
    parser.add_argument("--ray-scaling", type=int, default=0, metavar="COPIES",
                        help="also index COPIES copies of the XQuAD articles with Ray, 1 then 2 workers, and in "
                             "this process (0: skip)")
    parser.add_argument("--only-ray", action="store_true", help="only the Ray part (with --ray-scaling)")
    args = parser.parse_args(argv)

    from archivist import collect_loaders
    from archivist_models.embedder import RECIPE_VERSION, build_embedder
    from archivist_team import schema
    from archivist_team.collection import TeamCollection
    from archivist_team.connection import connect, split_password, with_vectors
    from archivist_team.encoder import LazyEncoder

    result: dict[str, Any] = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": sys.version.split()[0]}}
    url = args.url or start_server(tmp)[0]
    plain, password = split_password(url)
    encoder_path = build_embedder(ROOT / ".cache" / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", WHEELS)
    encoder = LazyEncoder(path=encoder_path)
    home = tmp / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "embedder-minilm-l6-v2").symlink_to(encoder_path, target_is_directory=True)
    loaders = collect_loaders(home)
    admin = connect(plain, password)
    try:
        with admin.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'") as cur:
            row = cur.fetchone()
        schema.create_collection(admin, "xquad", "bench_xquad")
        schema.create_collection(admin, "scale", "bench_scale")
        # Searches run as a member of the collections' roles, so row-level security applies
        # as it does for users (the tables' owner is exempt from it).
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'bench_member'").fetchone():
            admin.execute("CREATE ROLE bench_member LOGIN PASSWORD 'bench'")
        admin.execute("GRANT bench_xquad, bench_scale TO bench_member")
        parts = urlsplit(plain)
        member = urlunsplit(parts._replace(netloc=f"bench_member@{parts.hostname}:{parts.port}"))
        result["machine"]["postgresql"] = admin.execute("SHOW server_version").fetchone()[0]
        result["machine"]["pgvector"] = row[0] if row else admin.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    finally:
        admin.close()

    if args.ray_scaling:
        result["ray_scaling"] = ray_scaling(tmp, (plain, password), member, encoder_path, home, loaders,
                                               args.ray_scaling)
        print(json.dumps(result["ray_scaling"], indent=1), flush=True)
        if args.only_ray:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
            print(f"wrote {args.out}")
            return 0

    # 1. XQuAD through the real pipeline
    docs = tmp / "xquad"
    docs.mkdir()
    questions = load_xquad(docs)
    if args.questions:
        questions = questions[:args.questions]
    xquad = TeamCollection("xquad", member, "bench", encoder=encoder, loaders=lambda: loaders, min_similarity=0.0)
    t = time.perf_counter()
    report = xquad.sync([xquad.add_source(docs)])
    result["xquad_index"] = {"files": len(report.indexed), "passages": report.passages,
                             "seconds": round(time.perf_counter() - t, 1)}
    print(f"indexed XQuAD: {report.passages} passages in {result['xquad_index']['seconds']} s", flush=True)
    quality: dict[str, Any] = {}
    latencies: list[float] = []
    for mode in ("hybrid", "dense", "keyword"):
        ranked = []
        for q in questions:
            t = time.perf_counter()
            ranked.append([p.text for p in xquad.search(q["q"], 10, mode=mode)])
            if mode == "hybrid":
                latencies.append(time.perf_counter() - t)
        quality[f"postgresql_{mode}"] = recall(ranked, questions)
    result["search_latency_xquad"] = {"passages": report.passages, "queries": len(latencies),
                                      **percentiles(latencies)}
    if not args.no_faiss:
        from archivist_faiss.index import open_index

        fhome = tmp / "faiss-home"
        (fhome / "models").mkdir(parents=True)
        (fhome / "models" / "embedder-minilm-l6-v2").symlink_to(encoder_path, target_is_directory=True)
        ix = open_index(fhome, embedder=encoder.embedder)
        try:
            ix.index([docs])
            for mode in ("hybrid", "dense", "keyword"):
                ranked = [[h.text for h in ix.search(q["q"], 10, mode=mode)] for q in questions]
                quality[f"faiss_{mode}"] = recall(ranked, questions)
        finally:
            ix.close()
    result["xquad_quality"] = {"questions": len(questions), **quality}
    print(json.dumps(result["xquad_quality"], indent=1), flush=True)

    # 2./3. HNSW at scale, from perturbed real vectors
    rows = xquad.conn.execute("SELECT embedding FROM archivist_passages WHERE collection = 'xquad' ORDER BY id")
    base = np.stack([np.asarray(getattr(r[0], "to_numpy", lambda v=r[0]: v)(), dtype=np.float32) for r in rows])
    xquad.close()
    # More real vectors than the 235 passages: every sentence of the articles, embedded.
    sentences = [s.strip() for f in sorted(docs.iterdir()) for s in re.split(r"(?<=[.!?])\s+", f.read_text("utf-8"))
                 if len(s.split()) >= 5]
    base = np.concatenate([base, encoder.embedder.embed(sentences)])
    result["hnsw_base_vectors"] = len(base)
    rng = np.random.default_rng(15)
    source = rng.integers(0, len(base), args.size)
    noise = rng.normal(0.0, 0.35 / np.sqrt(base.shape[1]), (args.size, base.shape[1])).astype(np.float32)
    vectors = base[source] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scale = TeamCollection("scale", member, "bench", encoder=encoder, loaders=lambda: loaders)
    conn = scale.conn
    admin = with_vectors(connect(plain, password))
    admin.execute("DROP INDEX archivist_passages_embedding")  # built after loading: faster
    t = time.perf_counter()
    with admin.transaction():  # (as the owner: PostgreSQL refuses COPY under row-level security)
        file_id = admin.execute("INSERT INTO archivist_files (collection, source, path, sha256) "
                                "VALUES ('scale', 'synthetic', 'synthetic', '') RETURNING id").fetchone()[0]
        with admin.cursor() as cur, cur.copy("COPY archivist_passages (collection, file_id, ordinal, start_offset, "
                                            "end_offset, text, embedding) FROM STDIN") as copy:
            for i, vec in enumerate(vectors):
                copy.write_row(("scale", file_id, i, 0, 0, f"synthetic passage {i}", vec))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    admin.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    admin.execute("CREATE INDEX archivist_passages_embedding ON archivist_passages "
                 "USING hnsw (embedding vector_cosine_ops)")
    build_s = time.perf_counter() - t
    admin.execute("ANALYZE archivist_passages")
    sizes = admin.execute("SELECT pg_total_relation_size('archivist_passages'), "
                          "pg_relation_size('archivist_passages_embedding'), "
                          "pg_relation_size('archivist_passages')").fetchone()
    admin.close()
    print(f"loaded {args.size} vectors in {load_s:.1f} s, HNSW built in {build_s:.1f} s", flush=True)
    picks = rng.choice(len(questions), min(args.queries, len(questions)), replace=False)
    qvecs = encoder.embedder.embed([questions[i]["q"] for i in picks])
    exact_times, truths = [], []
    for q in qvecs:
        t = time.perf_counter()
        truths.append({i for i, _ in scale.exact(q, 10)})
        exact_times.append(time.perf_counter() - t)
    sweep = {}
    for ef in (40, 100, 200):
        times, hits = [], []
        for q, truth in zip(qvecs, truths):
            t = time.perf_counter()
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                approx = [r[0] for r in conn.execute(
                    "SELECT id FROM archivist_passages WHERE collection = 'scale' ORDER BY embedding <=> %s LIMIT 10",
                    (q,)).fetchall()]
            times.append(time.perf_counter() - t)
            hits.append(len(set(approx) & truth) / 10)
        sweep[f"ef_search_{ef}"] = {"recall_at_10": round(float(np.mean(hits)), 4), **percentiles(times)}
    hybrid_times = []
    for i in picks[:50]:
        t = time.perf_counter()
        scale.search(questions[i]["q"], 5)
        hybrid_times.append(time.perf_counter() - t)
    plan = conn.execute("EXPLAIN SELECT id FROM archivist_passages WHERE collection = 'scale' "
                        "ORDER BY embedding <=> %s LIMIT 10", (qvecs[0],)).fetchall()
    scale.close()
    result["hnsw"] = {"passages": args.size, "queries": len(qvecs), "load_s": round(load_s, 1),
                      "build_s": round(build_s, 1), "maintenance_work_mem": args.maintenance_work_mem,
                      "disk_mb": {"table_with_indexes": round(sizes[0] / 2**20), "hnsw_index": round(sizes[1] / 2**20),
                                  "table_heap": round(sizes[2] / 2**20)}, **sweep, "exact": percentiles(exact_times),
                      "hybrid_search_with_embedding": percentiles(hybrid_times),
                      "uses_index": any("archivist_passages_embedding" in r[0] for r in plan)}
    print(json.dumps(result["hnsw"], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
