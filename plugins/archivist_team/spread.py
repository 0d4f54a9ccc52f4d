"""Indexing spread over a Ray cluster (``archivist collections index NAME PATH --ray ...``).

This process decides what needs doing (the files whose content hash differs from what
the collection holds) and writes the results, one transaction per file, as they come
back; Ray Data reads, chunks and embeds the files on the cluster's workers. Each worker
is an actor that loads the sentence encoder and the document loaders once and keeps
them for every file it is given.

``--ray local`` starts a Ray instance on this machine (one worker per core); any other
value is a cluster's address (``ray://host:10001`` or ``host:6379``). The workers read
the files by their paths, so with a cluster of several machines the folders must be on
storage every machine sees at the same path (NFS, a shared volume), and each machine
needs Archivist with the ``team`` extra and its sentence encoder.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

from archivist import ArchivistError, SkippedFile, SyncReport
from archivist_team import ingestion

INSTALL = "pip install 'archivist[team]'"


class Preparer:
    """A Ray Data worker: the encoder and loaders, loaded once, then one file per row."""

    def __init__(self, encoder_path: str, home: str, threads: int) -> None:
        from archivist import collect_loaders
        from archivist_team.encoder import LazyEncoder

        self.encoder = LazyEncoder(path=Path(encoder_path), threads=threads)
        self.encoder.chunker  # noqa: B018 - load the encoder now, once per worker
        self.loaders = collect_loaders(home)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        item = ingestion.prepare(Path(row["path"]), row["sha256"], self.loaders, self.encoder)
        return {"source": row["source"], "path": row["path"], "item": pickle.dumps(item)}


def start(address: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ArchivistError(f"--ray needs Ray, which the default install leaves out: install it with {INSTALL}") from None
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # private by default (ARCHITECTURE.md rule 8)
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


def sync_with_ray(collection: Any, roots: list[str], address: str, workers: int | None = None) -> SyncReport:
    """Bring ``roots`` of ``collection`` up to date, preparing files on Ray (see the module)."""
    started = time.perf_counter()
    report = SyncReport()
    todo: list[dict[str, Any]] = []
    for key, files in collection.plan(roots):
        known = collection._known(key)
        on_disk = set()
        for file in files:
            path = str(file)
            on_disk.add(path)
            try:
                sha = ingestion.file_hash(file)
            except OSError as exc:
                collection.write(key, ingestion.NotIndexed(path, "", f"cannot read it ({exc.strerror or exc})"))
                report.skipped.append(SkippedFile(path, f"cannot read it ({exc.strerror or exc})"))
                continue
            before = known.get(path)
            if before is not None and before[0] == sha:
                if before[1] is None:
                    report.unchanged += 1
                else:
                    report.skipped.append(SkippedFile(path, before[1]))
                continue
            todo.append({"source": key, "path": path, "sha256": sha})
        for path in sorted(set(known) - on_disk):
            with collection._lock:
                ingestion.forget(collection.conn, collection.collection, path)
            if known[path][1] is None:
                report.removed.append(path)
    if todo:
        ray = start(address)
        if collection.encoder.home is None:
            raise ArchivistError("indexing with Ray needs the Archivist home whose loaders the workers use")
        count = workers or max(1, min(len(todo), int(ray.available_resources().get("CPU", 1))))
        dataset = ray.data.from_items(todo).map(
            Preparer, concurrency=count, num_cpus=1,
            fn_constructor_kwargs={"encoder_path": str(collection.encoder.folder()),
                                   "home": str(collection.encoder.home), "threads": 1})
        for row in dataset.iter_rows():
            item = pickle.loads(row["item"])
            collection.write(row["source"], item)
            if isinstance(item, ingestion.NotIndexed):
                report.skipped.append(SkippedFile(item.path, item.reason))
            else:
                report.indexed.append(item.path)
                report.passages += len(item.chunks)
                report.pages += item.pages
    report.seconds = time.perf_counter() - started
    return report
