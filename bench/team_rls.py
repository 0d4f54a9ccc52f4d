"""Keyword search under row-level security at scale: plans and timings of the options.

    .venv/bin/python bench/team_rls.py --pg-folder .cache/bench-team-pg [--questions 20]
                                       [--btree-gin] [--out bench/results/team_rls.json]

Why: a member's keyword search reads every passage of the collection (PostgreSQL applies a
row-level security policy before a condition whose operator is not leakproof, and ``@@``
is not, so the GIN index is not used): 7 s a question at a million passages. This measures,
on the database bench/team.py loaded and kept (``--pg-folder``), the plugin's BM25 query
(ranking.BM25_SQL) for XQuAD questions:

- ``member``: as a member of the collection's role, as the plugin runs it today;
- ``owner``: as the tables' owner, whom the policies do not apply to: what the GIN index
  gives, for reference only (never a way to search);
- ``member_leakproof``: as the member, with ``ts_match_vq`` (the function behind
  ``tsvector @@ tsquery``) marked LEAKPROOF, so the planner may use the GIN index before
  the policy: the policy still filters every row returned;
- ``member_btree_gin`` (``--btree-gin``): as the member, with a GIN index on
  ``(collection, tsv)`` (the btree_gin extension), without the leakproof mark.

Every change is made inside a transaction that is rolled back (``SET ROLE`` to the member
inside it), so the database is left as it was; the plugin's schema is not changed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ROOT.parent / "shared" / "data" / "xquad" / "xquad.en.json"


def bm25(conn: Any, question: str, n: float, avgdl: float, explain: bool = False) -> tuple[float, list[str]]:
    from archivist_team import ranking

    sql = ("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " if explain else "") + ranking.BM25_SQL
    t = time.perf_counter()
    rows = conn.execute(sql, {"collection": "scale", "query": ranking.tsquery(question), "terms": ranking.terms(question),
                              "n": n, "avgdl": avgdl, "limit": 50}).fetchall()
    seconds = time.perf_counter() - t
    return seconds, [r[0] for r in rows] if explain else []


def measure(conn: Any, questions: list[str], stats: tuple[float, float]) -> dict[str, Any]:
    times = [bm25(conn, q, *stats)[0] for q in questions]
    plan = bm25(conn, questions[0], *stats, explain=True)[1]
    ms = sorted(t * 1000 for t in times)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "plan_of_first": plan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-folder", type=Path, required=True, help="the folder bench/team.py --pg-folder kept")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--btree-gin", action="store_true", help="also a GIN index on (collection, tsv)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "team_rls.json")
    args = parser.parse_args(argv)
    from team import start_server, stop_server

    from archivist_team import ranking
    from archivist_team.connection import connect, split_password

    folder = args.pg_folder.resolve()
    if not (folder / "pg" / "data").is_dir():
        print(f"error: no database kept in {folder}: run bench/team.py --pg-folder {folder} first", file=sys.stderr)
        return 2
    url = start_server(folder)[0]
    try:
        plain, password = split_password(url)
        member_url = plain.replace("archivist@", "bench_member@", 1)
        data = json.loads(XQUAD.read_text("utf-8"))["data"]
        questions = [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]][:args.questions]
        owner = connect(plain, password)
        member = connect(member_url, "bench")
        stats = owner.execute(ranking.STATS_SQL, ("scale",)).fetchone()
        n, avgdl = float(stats[0]), float(stats[1])
        result: dict[str, Any] = {
            "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
                        "postgresql": owner.execute("SHOW server_version").fetchone()[0]},
            "passages": int(n), "questions": len(questions)}
        print(f"{int(n)} passages, {len(questions)} questions", flush=True)
        result["member"] = measure(member, questions, (n, avgdl))
        print("member", result["member"]["p50_ms"], flush=True)
        result["owner"] = measure(owner, questions, (n, avgdl))
        print("owner", result["owner"]["p50_ms"], flush=True)
        with owner.transaction(force_rollback=True):
            owner.execute("ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF")
            owner.execute("SET LOCAL ROLE bench_member")
            assert owner.execute("SELECT current_user").fetchone()[0] == "bench_member"
            result["member_leakproof"] = measure(owner, questions, (n, avgdl))
            visible = owner.execute("SELECT count(*) FROM archivist_passages").fetchone()[0]
            result["member_leakproof"]["rows_the_member_sees"] = int(visible)
        print("member_leakproof", result["member_leakproof"]["p50_ms"], flush=True)
        if args.btree_gin:
            with owner.transaction(force_rollback=True):
                owner.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
                owner.execute("SET LOCAL maintenance_work_mem = '1GB'")
                t = time.perf_counter()
                owner.execute("CREATE INDEX bench_collection_tsv ON archivist_passages USING gin (collection, tsv)")
                build = time.perf_counter() - t
                owner.execute("SET LOCAL ROLE bench_member")
                result["member_btree_gin"] = measure(owner, questions, (n, avgdl))
                result["member_btree_gin"]["index_build_s"] = round(build, 1)
            print("member_btree_gin", result["member_btree_gin"]["p50_ms"], flush=True)
        owner.close()
        member.close()
    finally:
        stop_server(folder / "pg")
    for key, value in result.items():
        if isinstance(value, dict) and "plan_of_first" in value:
            print(f"== {key}: p50 {value['p50_ms']} ms, p95 {value['p95_ms']} ms")
            print("\n".join(value["plan_of_first"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
