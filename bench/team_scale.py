"""The million-passage part of bench/team.py: a large collection made from real vectors,
HNSW builds, an ef_search sweep against exact search, and XQuAD's quality inside it.

Why a module of its own: loading and indexing a million passages takes a quarter of an
hour on 2 cores, so it is done once into a database kept on disk (``--pg-folder``) and
every later sweep reuses it; that bookkeeping does not belong with the XQuAD pipeline run.

How the set is made (``make_set``), from :mod:`team_corpus`'s real texts:

- ``held_out`` real sentences are set aside as queries: never inserted, never copied;
- every other real text is inserted once with its real vector (XQuAD's 240 passages first,
  in their own file, the targets of the quality check);
- the rest, up to ``size``, are copies of real texts other than XQuAD's passages, each a
  real vector plus Gaussian noise of norm about ``noise`` (renormalized: cosine about 0.94
  to its source at 0.35) and carrying its source's text, sources drawn uniformly.

Truth is exact search in NumPy over the same float32 vectors (checked against PostgreSQL's
own exact scan on a few queries), so the sweep does not spend a second per query on it.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from team_corpus import Corpus

SEED = 15
SCALE = "scale"  # the collection's name
RECIPE = "v2"  # bump when make_set changes, so a kept database is not taken for the new set


def percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


@dataclass
class ScaleSet:
    """Rows to insert (ordinal = row index) and the held-out query sentences."""

    vectors: np.ndarray  # (size, 384) float32, unit length
    source: np.ndarray  # corpus index each row's text (and vector, before noise) comes from
    real_rows: int  # rows [0, real_rows) are real vectors, the rest perturbed copies
    xquad_rows: int  # rows [0, xquad_rows) are XQuAD's passages
    held_out: np.ndarray  # corpus indices of the held-out query sentences
    key: str  # identifies the set (corpus, size, noise, seed), stored with it in the database


def make_set(corpus: Corpus, size: int, noise: float = 0.35, held_out: int = 200) -> ScaleSet:
    rng = np.random.default_rng(SEED)
    kinds = corpus.kinds
    xquad = np.flatnonzero(kinds == 0)
    sentence_like = np.flatnonzero(np.isin(kinds, (1, 3, 4)))
    queries = np.sort(rng.choice(sentence_like, held_out, replace=False))
    others = np.setdiff1d(np.flatnonzero(kinds != 0), queries)
    if size < len(xquad) + len(others):  # (smaller than the real set: a sample of it, no copies)
        others = np.sort(rng.choice(others, size - len(xquad), replace=False))
        copies = np.zeros(0, dtype=np.int64)
    else:
        copies = rng.choice(others, size - len(xquad) - len(others))
    source = np.concatenate([xquad, others, copies])
    vectors = corpus.vectors[source].copy()
    real = len(xquad) + len(others)
    for start in range(real, size, 100_000):  # (in slices: a million rows of noise at once is 1.5 GB more)
        end = min(size, start + 100_000)
        vectors[start:end] += rng.normal(0.0, noise / np.sqrt(vectors.shape[1]),
                                         (end - start, vectors.shape[1])).astype(np.float32)
        vectors[start:end] /= np.linalg.norm(vectors[start:end], axis=1, keepdims=True)
    digest = hashlib.sha256(corpus.vectors[:: max(1, len(corpus.vectors) // 1000)].tobytes()).hexdigest()[:12]
    key = f"{RECIPE}:{digest}:{len(corpus.texts)}:{size}:{noise}:{held_out}:{SEED}"
    return ScaleSet(vectors, source, real, len(xquad), queries, key)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Row indices of each query's ``k`` nearest rows by cosine (unit vectors: dot product)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 32):
        scores = queries[s:s + 32] @ vectors.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, 1).argsort(axis=1)[:, ::-1]
        out[s:s + 32] = np.take_along_axis(part, order, 1)
    return out


def stored_key(admin: Any) -> str | None:
    row = admin.execute("SELECT sha256 FROM archivist_files WHERE collection = %s AND path = 'synthetic'",
                        (SCALE,)).fetchone()
    return row[0] if row else None


def load(admin: Any, corpus: Corpus, data: ScaleSet) -> dict[str, float]:
    """Replace the collection's passages with ``data`` by COPY (as the tables' owner: COPY
    is refused under row-level security), with the full-text and HNSW indexes dropped for
    the load; the full-text (GIN) index is rebuilt here and timed, HNSW by :func:`build`."""
    admin.execute("DROP INDEX IF EXISTS archivist_passages_embedding")
    admin.execute("DROP INDEX IF EXISTS archivist_passages_tsv")
    with admin.transaction():
        admin.execute("DELETE FROM archivist_files WHERE collection = %s", (SCALE,))
        admin.execute("DELETE FROM archivist_passages WHERE collection = %s", (SCALE,))
    t = time.perf_counter()
    with admin.transaction():
        files = [admin.execute("INSERT INTO archivist_files (collection, source, path, sha256) "
                               "VALUES (%s, 'synthetic', %s, %s) RETURNING id", (SCALE, path, key)).fetchone()[0]
                 for path, key in (("xquad-passages", ""), ("synthetic", data.key))]
        # Binary COPY: the text form of 384 floats costs more in Python than the server's work.
        with admin.cursor() as cur, cur.copy("COPY archivist_passages (collection, file_id, ordinal, start_offset, "
                                            "end_offset, text, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int8", "int4", "int4", "int4", "text", "vector"])
            for i, (src, vec) in enumerate(zip(data.source.tolist(), data.vectors)):
                text = corpus.texts[src]
                copy.write_row((SCALE, files[i >= data.xquad_rows], i, 0, len(text), text, vec))
    copy_s = time.perf_counter() - t
    t = time.perf_counter()
    admin.execute("SET maintenance_work_mem = '1GB'")
    admin.execute("CREATE INDEX archivist_passages_tsv ON archivist_passages USING gin (tsv)")
    gin_s = time.perf_counter() - t
    admin.execute("VACUUM ANALYZE archivist_passages")
    return {"copy_s": round(copy_s, 1), "gin_build_s": round(gin_s, 1)}


def hnsw_params(admin: Any) -> tuple[int, int] | None:
    """(m, ef_construction) of the HNSW index there is, None if there is none."""
    row = admin.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'archivist_passages_embedding'").fetchone()
    if row is None:
        return None
    m = ef = None
    for part in row[0].replace("(", " ").replace(")", " ").replace(",", " ").split():
        if part.startswith("m="):
            m = int(part[2:].strip("'"))
        if part.startswith("ef_construction="):
            ef = int(part[16:].strip("'"))
    return (m or 16, ef or 64)


def build(admin: Any, m: int, ef_construction: int, memory: str) -> dict[str, Any]:
    """The HNSW index with these parameters (dropping another one first), timed, and sizes."""
    admin.execute("DROP INDEX IF EXISTS archivist_passages_embedding")
    admin.execute(f"SET maintenance_work_mem = '{memory}'")
    admin.execute("SET max_parallel_maintenance_workers = 2")
    t = time.perf_counter()
    admin.execute("CREATE INDEX archivist_passages_embedding ON archivist_passages USING hnsw "
                  f"(embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})")
    return {"build_s": round(time.perf_counter() - t, 1), "maintenance_work_mem": memory}


def sizes(admin: Any) -> dict[str, int]:
    row = admin.execute("SELECT pg_total_relation_size('archivist_passages'), "
                        "pg_relation_size('archivist_passages_embedding'), pg_relation_size('archivist_passages'), "
                        "pg_relation_size('archivist_passages_tsv'), pg_database_size(current_database())").fetchone()
    return {"table_with_indexes_mb": round(row[0] / 2**20), "hnsw_index_mb": round(row[1] / 2**20),
            "table_heap_mb": round(row[2] / 2**20), "gin_index_mb": round(row[3] / 2**20),
            "database_mb": round(row[4] / 2**20)}


def sweep(conn: Any, queries: np.ndarray, truths: np.ndarray, ef_values: list[int]) -> dict[str, Any]:
    """recall@10 against exact search and latency of ``ORDER BY embedding <=> q LIMIT 10``
    as a member (row-level security on), with the plugin's settings but ``ef_search``."""
    out: dict[str, Any] = {}
    for ef in ef_values:
        times, hits = [], []
        for q, truth in zip(queries, truths):
            t = time.perf_counter()
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                got = [r[0] for r in conn.execute(
                    "SELECT ordinal FROM archivist_passages WHERE collection = %s ORDER BY embedding <=> %s LIMIT 10",
                    (SCALE, q)).fetchall()]
            times.append(time.perf_counter() - t)
            hits.append(len(set(got) & set(truth.tolist())) / 10)
        out[f"ef_search_{ef}"] = {"recall_at_10": round(float(np.mean(hits)), 4), **percentiles(times)}
        print(f"    ef_search {ef}: {out[f'ef_search_{ef}']}", flush=True)
    return out


def sql_exact(conn: Any, queries: np.ndarray, truths: np.ndarray) -> dict[str, Any]:
    """PostgreSQL's exact scan (index scans off) on a few queries: its latency, and that it
    agrees with the NumPy truth the sweep uses."""
    times, agree = [], []
    for q, truth in zip(queries, truths):
        t = time.perf_counter()
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            got = [r[0] for r in conn.execute(
                "SELECT ordinal FROM archivist_passages WHERE collection = %s ORDER BY embedding <=> %s LIMIT 10",
                (SCALE, q)).fetchall()]
        times.append(time.perf_counter() - t)
        agree.append(len(set(got) & set(truth.tolist())) / 10)
    return {"queries": len(queries), "agreement_with_numpy_truth": round(float(np.mean(agree)), 4) if agree else None,
            **percentiles(times)}


def xquad_inside(scale: Any, data: ScaleSet, question_vectors: np.ndarray, contexts: list[int],
                 truths: np.ndarray) -> dict[str, Any]:
    """XQuAD's questions against the million: is the passage a question was asked about
    (inserted once, among a million others) in the plugin's dense top 1/5/10 (its own
    HNSW search, ef_search 200)? And in exact search's, to tell HNSW's loss from the
    distractors'."""
    ids = dict(scale.conn.execute(
        "SELECT ordinal, id FROM archivist_passages WHERE collection = %s AND ordinal < %s",
        (SCALE, data.xquad_rows)).fetchall())
    hnsw = {1: 0, 5: 0, 10: 0}
    exact = {1: 0, 5: 0, 10: 0}
    alone = {1: 0, 5: 0, 10: 0}
    xq = data.vectors[:data.xquad_rows]
    times = []
    for q, ctx, truth in zip(question_vectors, contexts, truths):
        t = time.perf_counter()
        got = [i for i, _ in scale.dense(q, 10)]
        times.append(time.perf_counter() - t)
        only = list(np.argsort(-(xq @ q))[:10])
        for k in hnsw:
            hnsw[k] += ids[ctx] in got[:k]
            exact[k] += ctx in truth[:k].tolist()
            alone[k] += ctx in only[:k]
    n = len(contexts)

    def rate(d: dict[int, int]) -> dict[str, float]:
        return {f"r{k}": round(v / n, 4) for k, v in d.items()}

    return {"questions": n, "plugin_dense_hnsw": rate(hnsw), "exact_in_the_million": rate(exact),
            "exact_among_xquad_passages_only": rate(alone), "plugin_dense_latency": percentiles(times)}
