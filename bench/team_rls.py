"""Keyword search under row-level security at scale: plans and timings of the options.

    .venv/bin/python bench/team_rls.py --pg-folder .cache/bench-team-pg [--questions 20]
                                       [--btree-gin] [--bounded-only] [--hybrid 10]
                                       [--out bench/results/team_rls.json]

Why: a member's keyword search reads every passage of the collection (PostgreSQL applies a
row-level security policy before a condition whose operator is not leakproof, and ``@@``
is not, so the GIN index is not used): 7 s a question at a million passages. This measures,
on the database bench/team.py loaded and kept (``--pg-folder``), the full BM25 query
(ranking.BM25_SQL, which the plugin ran until the bounded one) for XQuAD questions:

- ``member``: as a member of the collection's role;
- ``member_bounded``: as the member, the bounded BM25 the plugin runs (ranking.bm25_sql:
  full BM25 only for the best-covered candidates), with its agreement with ``member``'s
  ranking on the same questions (same top 10, passages shared in the top 50); the two run
  in turns on each question, so the load weighs on both alike;
- ``owner``: as the tables' owner, whom the policies do not apply to: what the GIN index
  gives, for reference only (never a way to search);
- ``member_leakproof``: as the member, with ``ts_match_vq`` (the function behind
  ``tsvector @@ tsquery``) marked LEAKPROOF, so the planner may use the GIN index before
  the policy: the policy still filters every row returned;
- ``member_btree_gin`` (``--btree-gin``): as the member, with a GIN index on
  ``(collection, tsv)`` (the btree_gin extension), without the leakproof mark.

``--bounded-only`` measures ``member`` and ``member_bounded`` alone; ``--hybrid N`` also
times the plugin's whole hybrid search (``TeamCollection.search``, query embedding
included) as the member on N questions.

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


LIMIT = 50  # the keyword ranking's depth in a search for 5 passages (TeamCollection.search)


def bm25(conn: Any, question: str, n: float, avgdl: float, explain: bool = False,
         bounded: bool = False) -> tuple[float, list[Any]]:
    """Seconds for one keyword query, and its ranked (id, score) rows (or its plan with ``explain``)."""
    from archivist_team import ranking

    params = ranking.bm25_params(question, "scale", n, avgdl, LIMIT)
    assert params is not None
    sql = ranking.bm25_sql(len(ranking.terms(question))) if bounded else ranking.BM25_SQL
    sql = ("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " if explain else "") + sql
    t = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    seconds = time.perf_counter() - t
    return seconds, [r[0] if explain else (r[0], round(r[1], 6)) for r in rows]


def measure(conn: Any, questions: list[str], stats: tuple[float, float]) -> dict[str, Any]:
    """p50/p95 of the full BM25 over ``questions``, and the plan of the first."""
    times = [bm25(conn, q, *stats)[0] for q in questions]
    plan = bm25(conn, questions[0], *stats, explain=True)[1]
    ms = sorted(t * 1000 for t in times)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "plan_of_first": plan}


def agreement(full: list[list[Any]], bounded: list[list[Any]]) -> dict[str, Any]:
    """How the bounded BM25's rankings agree with the full BM25's on the same questions: the
    same ids, or at least the same scores (a different passage with the same score, such as a
    copy of the same text, tied with another)."""
    scores = {"same_top_10_scores": sum([s for _, s in f[:10]] == [s for _, s in b[:10]]
                                        for f, b in zip(full, bounded, strict=True)),
              "same_top_50_scores": sum([s for _, s in f] == [s for _, s in b] for f, b in zip(full, bounded, strict=True))}
    full = [[i for i, _ in f] for f in full]
    bounded = [[i for i, _ in b] for b in bounded]
    return {"questions": len(full), **scores,
            "same_top_10_ids_in_order": sum(f[:10] == b[:10] for f, b in zip(full, bounded, strict=True)),
            "same_top_10_as_sets": sum(set(f[:10]) == set(b[:10]) for f, b in zip(full, bounded, strict=True)),
            "mean_shared_in_top_50": round(statistics.mean(len(set(f) & set(b)) for f, b in zip(full, bounded,
                                                                                                strict=True)), 2)}


def paired(conn: Any, questions: list[str], stats: tuple[float, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``measure`` of the full and of the bounded BM25, run in turns on each question (which
    goes first alternating), so the load and the cache's state weigh on both alike."""
    times: dict[bool, list[float]] = {False: [], True: []}
    rankings: dict[bool, list[list[Any]]] = {False: [], True: []}
    for k, q in enumerate(questions):
        for bounded in ((False, True) if k % 2 == 0 else (True, False)):
            seconds, ids = bm25(conn, q, *stats, bounded=bounded)
            times[bounded].append(seconds)
            rankings[bounded].append(ids)
    out = []
    for bounded in (False, True):
        ms = sorted(t * 1000 for t in times[bounded])
        out.append({"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
                    "plan_of_first": bm25(conn, questions[0], *stats, explain=True, bounded=bounded)[1]})
    out[1]["candidates"] = _candidates()
    out[1]["agreement_with_member"] = agreement(rankings[False], rankings[True])
    return out[0], out[1]


def _candidates() -> int:
    from archivist_team import ranking

    return ranking.candidates(LIMIT)


def hybrid(member_url: str, questions: list[str]) -> dict[str, Any]:
    """The plugin's whole hybrid search for 5 passages as the member, query embedding included:
    as it runs, and as it ran before (the full BM25: ``ranking.bm25_sql`` replaced by BM25_SQL;
    the passages holding every word found by a search for them, ``keyword(..., joiner="&")``,
    not by id among the results), in turns on each question."""
    from unittest import mock

    from team import WHEELS

    from archivist_models.embedder import RECIPE_VERSION, build_embedder
    from archivist_team import ranking
    from archivist_team.collection import TeamCollection
    from archivist_team.encoder import LazyEncoder

    path = build_embedder(ROOT / ".cache" / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", WHEELS)
    scale = TeamCollection("scale", member_url, "bench", encoder=LazyEncoder(path=path))
    scale.search(questions[0], 5)  # (the encoder's load and the statistics' first read are not timed)
    times: dict[bool, list[float]] = {False: [], True: []}
    for k, q in enumerate(questions):
        for bounded in ((False, True) if k % 2 == 0 else (True, False)):
            with mock.patch.object(ranking, "bm25_sql", ranking.bm25_sql if bounded else lambda _: ranking.BM25_SQL), \
                    mock.patch.object(scale, "holding_every_word", scale.holding_every_word if bounded else
                                      lambda query, ids: {i for i, _ in scale.keyword(query, 50, joiner="&")}):
                t = time.perf_counter()
                scale.search(q, 5)
                times[bounded].append(time.perf_counter() - t)
    scale.close()
    out: dict[str, Any] = {"questions": len(questions)}
    for bounded, key in ((True, "now"), (False, "before")):
        ms = sorted(t * 1000 for t in times[bounded])
        out[key] = {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-folder", type=Path, required=True, help="the folder bench/team.py --pg-folder kept")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--btree-gin", action="store_true", help="also a GIN index on (collection, tsv)")
    parser.add_argument("--bounded-only", action="store_true",
                        help="only the member's full and bounded BM25 (no owner, leakproof or index runs)")
    parser.add_argument("--hybrid", type=int, default=0, metavar="N",
                        help="also time the plugin's whole hybrid search as the member on N questions")
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
        result["member"], result["member_bounded"] = paired(member, questions, (n, avgdl))
        print("member", result["member"]["p50_ms"], flush=True)
        print("member_bounded", result["member_bounded"]["p50_ms"], result["member_bounded"]["agreement_with_member"],
              flush=True)
        if args.hybrid:
            result["member_hybrid_search"] = hybrid(member_url, questions[:args.hybrid])
            print("member_hybrid_search", result["member_hybrid_search"], flush=True)
        if args.bounded_only:
            owner.close()
            member.close()
            return finish(result, args.out)
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
    return finish(result, args.out)


def finish(result: dict[str, Any], out: Path) -> int:
    """Print each mode's figures and plan, and write ``result`` to ``out``."""
    result["machine"]["load_average_at_end"] = os.getloadavg()
    for key, value in result.items():
        if isinstance(value, dict) and "plan_of_first" in value:
            print(f"== {key}: p50 {value['p50_ms']} ms, p95 {value['p95_ms']} ms")
            print("\n".join(value["plan_of_first"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
