"""Bringing sources up to date: walk, compare, read, chunk, embed, write, one file at a time.

A file is compared by size and modification time, then by content hash (touching a
file costs a hash, not a re-index); a new or changed one is read by its loader, cut
into passages and embedded, then written in one transaction (:mod:`records`). A file
that cannot be read is recorded as skipped with its reason, never raised.

Progress is reported before each file and, in a file of more than
:data:`BIG_FILE_PASSAGES` passages, between embedding batches. Cancelling is checked at
the same places: the file being read is then left as it was (nothing of it was written)
and the next sync redoes it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from archivist import ArchivistError, SkippedFile, SyncProgress, SyncReport
from archivist_faiss.encoder import LazyEncoder
from archivist_faiss.loading import LoaderRegistry, LoadResult
from archivist_faiss.records import Fault, Records
from archivist_faiss.sources import Sources
from archivist_faiss.store import File
from archivist_faiss.vector_cache import VectorCache

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox", ".cache"}
# A file with more passages than this reports how far its embedding is (a 600-page PDF
# embeds for a minute or more); smaller ones only before they start.
BIG_FILE_PASSAGES = 64

Progress = Callable[[SyncProgress], None]


class Stopped(Exception):
    """Cancel was seen between two embedding batches of a file."""


class Ingestion:
    def __init__(self, sources: Sources, records: Records, registry: LoaderRegistry, encoder: LazyEncoder,
                 cache: VectorCache) -> None:
        self.sources = sources
        self.records = records
        self.registry = registry
        self.encoder = encoder
        self.cache = cache

    def sync(self, roots: Sequence[str] | None = None, progress: Progress | None = None,
             cancel: threading.Event | None = None, fault: Fault | None = None) -> SyncReport:
        """Index new and changed files of ``roots`` (source keys; None: every source),
        drop deleted ones; see the module's docstring for progress and cancelling."""
        t0 = time.monotonic()
        report = SyncReport()
        ids = self.sources.ids()
        self.cache.ensure()
        try:
            for root in (list(roots) if roots is not None else sorted(ids)):
                if root not in ids:
                    raise ArchivistError(f"{root} is not a source")
                self._sync_root(root, ids[root], report, progress, cancel, fault)
                if report.cancelled:
                    break
        finally:
            self.cache.save()
        report.seconds = time.monotonic() - t0
        return report

    def _sync_root(self, root: str, source_id: int, report: SyncReport, progress: Progress | None,
                   cancel: threading.Event | None, fault: Fault | None) -> None:
        files = list(walk(Path(root)))
        known = self.sources.known_files(source_id)
        on_disk = {str(p) for p in files}
        gone = [p for p in known if p not in on_disk]
        if gone:
            report.removed += gone
            self.records.delete_files([known[p].id for p in gone])
        for n, path in enumerate(files):
            if progress:
                progress(SyncProgress(root, n, len(files), str(path)))
            if cancel is not None and cancel.is_set():  # checked after progress, which may have set it
                report.cancelled = True
                return

            def part(done: int, total: int, n: int = n, path: Path = path) -> None:
                if cancel is not None and cancel.is_set():
                    raise Stopped()
                if progress and total > BIG_FILE_PASSAGES:
                    progress(SyncProgress(root, n, len(files), str(path), done, total))

            listened = progress is not None or cancel is not None
            try:
                self._sync_file(source_id, path, known.get(str(path)), report, part if listened else None, fault)
            except Stopped:
                report.cancelled = True
                return
        if progress:
            progress(SyncProgress(root, len(files), len(files)))

    def sync_paths(self, paths: Iterable[Path]) -> SyncReport:
        """Re-check single files (the folder watcher's entry point)."""
        report = SyncReport()
        self.cache.ensure()
        ids = self.sources.ids()
        for path in paths:
            path = Path(path).resolve()
            source_id = self.sources.owner(path, ids)
            if source_id is None:
                continue
            record = self.sources.file(path)
            if not path.is_file():
                if record is not None:
                    report.removed.append(str(path))
                    self.records.delete_files([record.id])
                continue
            self._sync_file(source_id, path, record, report, None, None)
        self.cache.save()
        return report

    def _sync_file(self, source_id: int, path: Path, record: File | None, report: SyncReport,
                   part: Callable[[int, int], None] | None, fault: Fault | None) -> None:
        try:
            st = path.stat()
        except OSError as exc:
            report.skipped.append(SkippedFile(str(path), f"cannot read: {exc.strerror or exc}"))
            return
        if record is not None and record.size == st.st_size and record.mtime == st.st_mtime:
            _unchanged(record, report)
            return
        try:
            digest = file_sha256(path)
        except OSError as exc:
            report.skipped.append(SkippedFile(str(path), f"cannot read: {exc.strerror or exc}"))
            return
        if record is not None and record.sha256 == digest:
            self.records.touch(record.id, st)
            _unchanged(record, report)
            return
        result = self.registry.load(path)
        chunks, vectors = [], None
        if result.document is not None:
            chunks = self.encoder.chunker.chunk(result.document)
            if not chunks:
                result = LoadResult(path, reason="no text found", loader=result.loader)
            else:
                texts = [c.text for c in chunks]
                embed = self.encoder.embedder.embed
                vectors = embed(texts) if part is None else embed(texts, progress=part)
        if fault:
            fault("before_commit", path)
        self.records.write_file(source_id, path, st, digest, result, chunks, vectors, record, fault)
        if result.document is None:
            report.skipped.append(SkippedFile(str(path), result.reason or "skipped"))
        else:
            report.indexed.append(str(path))
            report.passages += len(chunks)
            report.pages += len(result.document.parts)


def _unchanged(record: File, report: SyncReport) -> None:
    report.unchanged += 1
    if record.status == "skipped":
        report.skipped.append(SkippedFile(record.path, record.reason or "skipped"))


def walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` (or ``root`` itself), sorted, skipping hidden and tool folders."""
    root = Path(root)
    if root.is_file():
        yield root.resolve()
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".tmp", "~")):
                continue
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p.resolve()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
