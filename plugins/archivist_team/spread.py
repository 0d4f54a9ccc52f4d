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

A worker that dies (its process killed, its machine gone) loses only the file it held:
each file is a block of its own, so a Ray task prepares exactly one file, and Ray Data
restarts a dead worker and retries its task (its actors' ``max_restarts`` and
``max_task_retries`` are unlimited), so that file is prepared again and comes back once.
This process writes each file by replacing what the collection holds of it, in one
transaction, so even a file that came back twice would leave one copy; it is counted once.
A run stopped altogether (this process killed) resumes where it was: the next run finds
the files already written unchanged by their hashes and prepares only the rest.
"""

from __future__ import annotations

import os
import pickle
import sys
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
        # In the worker's log (Ray keeps each worker's stderr under its session's logs/):
        # which file a worker holds when it hangs or dies is what its operator needs to see.
        print(f"archivist: preparing {row['path']}", file=sys.stderr, flush=True)
        item = ingestion.prepare(Path(row["path"]), row["sha256"], self.loaders, self.encoder)
        return {"source": row["source"], "path": row["path"], "item": pickle.dumps(item)}


def start(address: str) -> Any:
    """Ray, connected to the cluster at ``address`` or to a new instance here ("local"),
    unless this process is already connected to one (a caller, or a test, chose it)."""
    try:
        import ray
    except ImportError:
        raise ArchivistError(f"--ray needs Ray, which the default install leaves out: install it with {INSTALL}") from None
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # private by default (ARCHITECTURE.md rule 8)
        if address == "local":
            # address="local" starts a new instance even where a cluster was started on this
            # machine before (ray.init() with no address would join that one instead).
            ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
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
                collection.unchanged(file, before, report)
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
        # One file per block, so one file per Ray task: a worker lost mid-file costs that
        # file alone (see the module's docstring), and a big file does not hold back others.
        dataset = ray.data.from_items(todo, override_num_blocks=len(todo)).map(
            Preparer, concurrency=count, num_cpus=1,
            fn_constructor_kwargs={"encoder_path": str(collection.encoder.folder()),
                                   "home": str(collection.encoder.home), "threads": 1})
        written: set[str] = set()
        for row in dataset.iter_rows():
            item = pickle.loads(row["item"])
            collection.write(row["source"], item)
            if item.path in written:  # (written again, replacing itself: counted once)
                continue
            written.add(item.path)
            if isinstance(item, ingestion.NotIndexed):
                report.skipped.append(SkippedFile(item.path, item.reason))
            else:
                report.indexed.append(item.path)
                report.passages += len(item.chunks)
                report.pages += item.pages
    report.seconds = time.perf_counter() - started
    return report
