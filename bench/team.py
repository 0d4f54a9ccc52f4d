r"""PostgreSQL collections (plugins/archivist_team): search latency, HNSW recall, XQuAD recall.

    .venv/bin/python bench/team.py [--size 50000] [--queries 200] [--out bench/results/team.json]
                                   [--url postgresql://... | --pg-folder DIR] [--no-faiss] [--only-scale]
                                   [--hnsw 16:64 ...] [--ef-search 40,100,200,400,800]
                                   [--reports] [--only-reports] [--no-scale]

Without ``--url`` a throw-away server is started with scripts/local-postgres.sh in a
temporary folder (PostgreSQL 15 + pgvector 0.8.6) and stopped at the end.

1. XQuAD quality: each of XQuAD's 48 English articles is one text file, indexed by the
   plugin's real pipeline (the built-in loaders, its chunker, the ONNX encoder, one
   transaction per file). A question's hit is a returned passage containing one of its
   gold answers; recall@1/5/10 for hybrid, dense and keyword search, and the same
   questions against the FAISS plugin's index of the same files (``--no-faiss`` skips it).
   With ``--reports`` (``--only-reports``: that alone), the same for the 40 near-identical
   PDFs of ../shared/data/reports and the 113 questions of bench/reports_questions.json
   (a hit: a passage of the question's file matching its gold pattern), beside the FAISS
   plugin's ``Search.search`` on the same files (the index bench/retrieval.py caches).
2. Latency: ``TeamCollection.search`` (hybrid, query embedding included) on the XQuAD
   collection, p50/p95 over the questions.
3. HNSW at scale (bench/team_scale.py): ``--size`` passages made from the real texts of
   ../shared/data (bench/team_corpus.py: ~76,000 XQuAD passages and sentences, document
   passages and sentences of formats/ and reports/, safety-train's texts), embedded once
   with the shipped encoder and cached under .cache/. Each real text is inserted once with
   its real vector (XQuAD's 240 passages among them); 200 real sentences are held out as
   queries; the rest of ``--size`` are copies of real texts, each its source's vector plus
   Gaussian noise of norm ``--noise`` (0.35: cosine about 0.94 to it), renormalized, with
   its source's text. Loaded by binary COPY, the full-text and HNSW indexes built after.
   For each ``--hnsw M:EF_CONSTRUCTION`` build: build time, sizes, and for ef_search in
   ``--ef-search`` the recall@10 of ``ORDER BY embedding <=> q LIMIT 10`` (as a member,
   row-level security on) against exact search and its p50/p95 latency, on XQuAD questions
   and on the held-out sentences; XQuAD's quality inside the set (is the passage a question
   was asked about in the plugin's dense top 1/5/10?); then the plugin's whole hybrid search
   on ``--hybrid-queries`` questions. ``--pg-folder DIR`` keeps the database, so a later
   run (another ``--hnsw``, another sweep) reuses the loaded passages instead of loading
   them again; ``--only-scale`` skips part 1.

   A million, as measured for docs/team.md (about 25 minutes on 2 cores):

       nice -n 10 .venv/bin/python bench/team.py --only-scale --size 1000000 \
           --pg-folder .cache/bench-team-pg --maintenance-work-mem 3GB --out bench/results/team_1m_real.json
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
REPORTS = ROOT.parent / "shared" / "data" / "reports"
REPORT_QUESTIONS = ROOT / "bench" / "reports_questions.json"
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
    if not seconds:
        return {}
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
    kept = _pg_folder(argv)
    try:
        return run(argv, tmp)
    finally:
        server = (kept or tmp) / "pg"
        if (server / "data").is_dir():
            stop_server(server)  # (a kept folder keeps its data: the next run starts it again)
        shutil.rmtree(tmp, ignore_errors=True)


def _pg_folder(argv: list[str] | None) -> Path | None:
    args = sys.argv[1:] if argv is None else argv
    for i, a in enumerate(args):
        if a == "--pg-folder" and i + 1 < len(args):
            return Path(args[i + 1]).resolve()
        if a.startswith("--pg-folder="):
            return Path(a.split("=", 1)[1]).resolve()
    return None


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
    parser.add_argument("--pg-folder", type=Path,
                        help="keep the server's data in this folder (not a temporary one), so a later run with "
                             "the same --size reuses the loaded passages and a built index")
    parser.add_argument("--only-scale", action="store_true",
                        help="skip the XQuAD pipeline run (part 1): only the passages at --size")
    parser.add_argument("--noise", type=float, default=0.35, help="norm of the noise added to each copied vector")
    parser.add_argument("--hnsw", action="append", metavar="M:EF_CONSTRUCTION",
                        help="an HNSW build to measure (repeatable, in order; default 16:64, pgvector's defaults)")
    parser.add_argument("--ef-search", type=lambda v: [int(x) for x in v.split(",")], default=[40, 100, 200, 400, 800],
                        help="hnsw.ef_search values to sweep, comma-separated")
    parser.add_argument("--exact-queries", type=int, default=20, help="queries timed with PostgreSQL's exact scan")
    parser.add_argument("--hybrid-queries", type=int, default=20,
                        help="questions timed through the plugin's whole hybrid search at --size")
    parser.add_argument("--reports", action="store_true",
                        help="also measure recall on the near-identical reports (bench/reports_questions.json)")
    parser.add_argument("--only-reports", action="store_true", help="only the reports (implies --reports)")
    parser.add_argument("--no-scale", action="store_true", help="skip the HNSW part at --size (parts 2 and 3)")
    args = parser.parse_args(argv)
    args.hnsw = args.hnsw or ["16:64"]
    for spec in args.hnsw:
        if not re.fullmatch(r"\d+:\d+", spec):
            parser.error(f"--hnsw {spec}: give M:EF_CONSTRUCTION, for example 16:64")
    if args.pg_folder:
        args.pg_folder = args.pg_folder.resolve()
        args.pg_folder.mkdir(parents=True, exist_ok=True)

    from archivist import collect_loaders
    from archivist_models.embedder import RECIPE_VERSION, build_embedder
    from archivist_team import schema
    from archivist_team.collection import TeamCollection
    from archivist_team.connection import connect, split_password
    from archivist_team.encoder import LazyEncoder

    result: dict[str, Any] = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": sys.version.split()[0],
                                          "load_average_at_start": os.getloadavg()}}
    url = args.url or start_server(args.pg_folder or tmp)[0]
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
        schema.create_collection(admin, "xquad", "bench_xquad")  # (one that exists is left as it is)
        schema.create_collection(admin, "scale", "bench_scale")
        schema.create_collection(admin, "reports", "bench_reports")
        # Searches run as a member of the collections' roles, so row-level security applies
        # as it does for users (the tables' owner is exempt from it).
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'bench_member'").fetchone():
            admin.execute("CREATE ROLE bench_member LOGIN PASSWORD 'bench'")
        admin.execute("GRANT bench_xquad, bench_scale, bench_reports TO bench_member")
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
            return written(result, args.out)

    if args.reports or args.only_reports:
        result["reports_quality"] = reports_quality(member, encoder, loaders, not args.no_faiss)
        print(json.dumps(result["reports_quality"], indent=1), flush=True)
        if args.only_reports:
            return written(result, args.out)

    if args.only_scale:
        result["hnsw"] = at_scale(args, (plain, password), member, encoder, loaders)
        return written(result, args.out)

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

    # 2./3. HNSW at scale, from tens of thousands of real vectors and copies of them
    if not args.no_scale:
        result["hnsw"] = at_scale(args, (plain, password), member, encoder, loaders)
    return written(result, args.out)


def written(result: dict[str, Any], out: Path) -> int:
    """Write ``result`` to ``out`` as JSON and say so; the exit status."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"wrote {out}")
    return 0


def reports_quality(member: str, encoder: Any, loaders: Any, with_faiss: bool) -> dict[str, Any]:
    """Recall@1/5/10 of the collection's three modes on the near-identical reports, and of
    the FAISS plugin's on the same files (its index as bench/retrieval.py caches it)."""
    from archivist_team.collection import TeamCollection

    data = json.loads(REPORT_QUESTIONS.read_text("utf-8"))["questions"]

    def hits(found: list[list[tuple[str, str]]]) -> dict[str, float]:
        ranks = []
        for q, passages in zip(data, found):
            ranks.append(next((r for r, (path, text) in enumerate(passages[:10], 1)
                               if Path(path).name in q["files"] and re.search(q["pattern"], text, re.I)), None))
        return {f"recall@{k}": round(sum(r is not None and r <= k for r in ranks) / len(ranks), 3) for k in (1, 5, 10)}

    reports = TeamCollection("reports", member, "bench", encoder=encoder, loaders=lambda: loaders, min_similarity=0.0)
    t = time.perf_counter()
    report = reports.sync([reports.add_source(REPORTS)])
    out: dict[str, Any] = {"questions": len(data), "files": len(report.indexed) + report.unchanged,
                           "passages": reports.count(), "index_seconds": round(time.perf_counter() - t, 1)}
    for mode in ("dense", "keyword", "hybrid"):
        out[f"postgresql_{mode}"] = hits([[(p.path, p.text) for p in reports.search(q["q"], 10, mode=mode)]
                                          for q in data])
    reports.close()
    if with_faiss:
        sys.path.insert(0, str(ROOT / "bench"))
        from retrieval import cached_index

        ix = cached_index("reports", REPORTS, headers=True)
        try:
            for mode in ("dense", "keyword", "hybrid"):
                out[f"faiss_{mode}"] = hits([[(h.path, h.text) for h in ix.searcher.search(q["q"], 10, mode=mode)]
                                             for q in data])
        finally:
            ix.close()
    return out


def at_scale(args: argparse.Namespace, admin_url: tuple[str, str | None], member: str, encoder: Any,
             loaders: Any) -> dict[str, Any]:
    """``--size`` passages (team_scale.make_set), loaded unless the database already holds
    the same set, then for each ``--hnsw`` build: the ef_search sweep against exact search,
    on XQuAD's questions and on held-out real sentences, and XQuAD's quality inside it."""
    import team_corpus
    import team_scale

    from archivist_team.collection import TeamCollection
    from archivist_team.connection import connect, with_vectors

    corpus = team_corpus.load(loaders, encoder)
    data = team_scale.make_set(corpus, args.size, noise=args.noise, held_out=args.queries)
    counts = corpus.count()
    out: dict[str, Any] = {
        "passages": args.size,
        "set": {"real_texts_embedded": len(corpus.texts), "by_kind": counts,
                "embed_seconds_when_cached": round(corpus.embed_seconds, 1),
                "held_out_query_sentences": len(data.held_out), "real_rows": data.real_rows,
                "copies": args.size - data.real_rows,
                "copies_per_copied_vector": round((args.size - data.real_rows) / max(1, data.real_rows - data.xquad_rows), 2),
                "noise_norm": args.noise, "key": data.key}}
    print(json.dumps(out["set"], indent=1), flush=True)
    admin = with_vectors(connect(*admin_url))
    try:
        if team_scale.stored_key(admin) == data.key:
            print("the database already holds this set: not loaded again", flush=True)
            out["load"] = "reused"
        else:
            out["load"] = team_scale.load(admin, corpus, data)
            print(f"loaded: {out['load']}", flush=True)
    finally:
        admin.close()

    # Queries: XQuAD's questions (their real embeddings) and real sentences kept out of the set.
    xquad = json.loads(XQUAD.read_text("utf-8"))["data"]
    asked = [(qa["question"], c) for c, p in enumerate(pp for a in xquad for pp in a["paragraphs"]) for qa in p["qas"]]
    if data.xquad_rows != sum(len(a["paragraphs"]) for a in xquad):
        raise SystemExit("error: XQuAD's passages are not all distinct texts; the quality check needs them so")
    t = time.perf_counter()
    question_vectors = encoder.embedder.embed([q for q, _ in asked])
    out["questions_embed_s"] = round(time.perf_counter() - t, 1)
    rng = np.random.default_rng(team_scale.SEED)
    picks = np.sort(rng.choice(len(asked), min(args.queries, len(asked)), replace=False))
    sets = {"xquad_questions": question_vectors[picks], "held_out_sentences": corpus.vectors[data.held_out]}
    t = time.perf_counter()
    truths = {name: team_scale.exact_top(data.vectors, q) for name, q in sets.items()}
    question_truths = team_scale.exact_top(data.vectors, question_vectors)
    out["numpy_exact_s"] = round(time.perf_counter() - t, 1)

    scale = TeamCollection(team_scale.SCALE, member, "bench", encoder=encoder, loaders=lambda: loaders)
    conn = scale.conn
    out["exact_sql"] = team_scale.sql_exact(conn, sets["xquad_questions"][:args.exact_queries],
                                            truths["xquad_questions"][:args.exact_queries])
    print(f"exact scan: {out['exact_sql']}", flush=True)
    out["builds"] = []
    for spec in args.hnsw:
        m, ef_construction = (int(x) for x in spec.split(":"))
        admin = with_vectors(connect(*admin_url))
        try:
            if team_scale.hnsw_params(admin) == (m, ef_construction):
                build: dict[str, Any] = {"build_s": "reused"}
            else:
                print(f"building HNSW m {m}, ef_construction {ef_construction} ...", flush=True)
                build = team_scale.build(admin, m, ef_construction, args.maintenance_work_mem)
            admin.execute("ANALYZE archivist_passages")
            build.update(team_scale.sizes(admin))
        finally:
            admin.close()
        build.update(m=m, ef_construction=ef_construction)
        build["load_average_after_build"] = os.getloadavg()
        print(f"  {build}", flush=True)
        for name, q in sets.items():
            print(f"  {name}:", flush=True)
            build[name] = team_scale.sweep(conn, q, truths[name], args.ef_search)
        build["xquad_inside"] = team_scale.xquad_inside(scale, data, question_vectors, [c for _, c in asked],
                                                        question_truths)
        print(f"  XQuAD inside: {build['xquad_inside']}", flush=True)
        plan = conn.execute("EXPLAIN SELECT id FROM archivist_passages WHERE collection = %s "
                            "ORDER BY embedding <=> %s LIMIT 10", (team_scale.SCALE, sets["xquad_questions"][0])).fetchall()
        build["uses_index"] = any("archivist_passages_embedding" in r[0] for r in plan)
        out["builds"].append(build)
    hybrid_times, hybrid_hits = [], 0
    for i in picks[:args.hybrid_queries]:
        question, context = asked[i]
        t = time.perf_counter()
        got = scale.search(question, 5)
        hybrid_times.append(time.perf_counter() - t)
        hybrid_hits += any(p.chunk_id == f"{team_scale.SCALE}:{scale_id(conn, context)}" for p in got)
    scale.close()
    out["hybrid_search_with_embedding"] = {"questions": len(hybrid_times), **percentiles(hybrid_times),
                                           "right_passage_in_top_5": hybrid_hits} if hybrid_times else {}
    out["load_average_at_end"] = os.getloadavg()
    print(json.dumps(out, indent=1), flush=True)
    return out


def scale_id(conn: Any, ordinal: int) -> int:
    import team_scale

    return int(conn.execute("SELECT id FROM archivist_passages WHERE collection = %s AND ordinal = %s",
                            (team_scale.SCALE, ordinal)).fetchone()[0])


if __name__ == "__main__":
    raise SystemExit(main())
