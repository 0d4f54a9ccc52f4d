"""Bringing sources up to date: walk, compare, read, chunk, write, embed, one file at a time.

A file is compared by size and modification time, then by content hash (touching a
file costs a hash, not a re-index); a new or changed one is read by its loader (in a
child process, under limits of memory and time: :mod:`reading`) and cut into passages.
The passages and their keyword rows are committed first, so the file's words are
searchable at once; then the passages are embedded and their vectors committed in
batches (:mod:`records`). A file between the two is "embedding": keyword search finds
it, dense search not yet; a sync that finds one (after a kill or a Stop) embeds the
passages still without a vector, without reading the file again if it did not change.

One file never stops the others. A file that cannot be read is recorded as skipped
with its reason, and so is a failure after reading (cutting it into passages, writing
it). A reason that may pass (a timeout, memory, a loader that raised, a failed write)
marks the file "failed" rather than "skipped", and a failed file is read again at the
next sync even if it did not change. Links and folders that cannot be read are
recorded with their reason too, never left out without a word (:func:`walk`). Paths are
stored as valid Unicode (:func:`path_key`): a file name with a byte that is not UTF-8 is
indexed under its name with that byte spelled ``\\xe9``.

Progress is reported before each file, before each page read by OCR (stage "ocr")
and, in a file of more than :data:`BIG_FILE_PASSAGES` passages, between embedding
batches (stage "embedding": the file is searchable by keyword by then). Cancelling is
checked at the same places and while a file is read: a file being read is then left as
it was (nothing of it was written), a file being embedded keeps its committed batches,
and the next sync redoes or finishes it. One sync runs at a time per index, across
processes (:mod:`sync_lock`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import OperationalError, StatementError

from archivist import ArchivistError, SkippedFile, SyncProgress, SyncReport
from archivist_faiss.chunking import TooManyPassages
from archivist_faiss.encoder import LazyEncoder
from archivist_faiss.loading import LoadResult, clean_text, describe
from archivist_faiss.reading import Stopped
from archivist_faiss.records import Fault, Records
from archivist_faiss.sources import Sources
from archivist_faiss.store import FAILED, PENDING, SKIPPED, File
from archivist_faiss.sync_lock import SyncLock
from archivist_faiss.vector_cache import VectorCache

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox", ".cache"}
# A file with more passages than this reports how far its embedding is (a 600-page PDF
# embeds for a minute or more); smaller ones only before they start.
BIG_FILE_PASSAGES = 64
# Passages embedded between two commits of their vectors: what a kill can cost (about
# 10 s of embedding on two cores), and how often a search in another process sees more.
EMBED_COMMIT = 256

Progress = Callable[[SyncProgress], None]

def path_key(path: Path | str) -> str:
    """How ``path`` is stored and reported: itself, or, when its name holds bytes that
    are not UTF-8 (a surrogate-escaped ``str``), those bytes spelled ``\\xe9``."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate from a UTF-16 file name (Windows)
            raw = text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    return text


@dataclass(frozen=True)
class Entry:
    """A path a walk found: a file to read, or (``problem``) what is recorded instead."""

    path: Path
    problem: str | None = None


class Ingestion:
    def __init__(self, sources: Sources, records: Records, reader: Any, encoder: LazyEncoder,
                 cache: VectorCache, lock: SyncLock) -> None:
        self.sources = sources
        self.records = records
        self.reader = reader  # reading.Reader, or a loading.LoaderRegistry (reads in this process)
        self.encoder = encoder
        self.cache = cache
        self.lock = lock

    def sync(self, roots: Sequence[str] | None = None, progress: Progress | None = None,
             cancel: threading.Event | None = None, fault: Fault | None = None) -> SyncReport:
        """Index new and changed files of ``roots`` (source keys; None: every source),
        drop deleted ones; see the module's docstring for progress and cancelling."""
        t0 = time.monotonic()
        report = SyncReport()
        with self.lock.held(cancel) as holding:
            if not holding:
                report.cancelled = True
                return report
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
        entries = list(walk(Path(root)))
        known = self.sources.known_files(source_id)
        on_disk = {path_key(e.path) for e in entries}
        gone = [p for p in known if p not in on_disk]
        if gone:
            report.removed += gone
            self.records.delete_files([known[p].id for p in gone])
        for n, entry in enumerate(entries):
            if progress:
                progress(SyncProgress(root, n, len(entries), path_key(entry.path)))
            if cancel is not None and cancel.is_set():  # checked after progress, which may have set it
                report.cancelled = True
                return

            def part(done: int, total: int, n: int = n, entry: Entry = entry) -> None:
                if cancel is not None and cancel.is_set():
                    raise Stopped()
                if progress and total > BIG_FILE_PASSAGES:
                    progress(SyncProgress(root, n, len(entries), path_key(entry.path), done, total))

            def pages(done: int, total: int, n: int = n, entry: Entry = entry) -> None:
                if progress:  # never raises: cancel is seen by the reader meanwhile
                    progress(SyncProgress(root, n, len(entries), path_key(entry.path), done, total, "ocr"))

            listened = progress is not None or cancel is not None
            try:
                self._sync_entry(source_id, entry, known.get(path_key(entry.path)), report,
                                 part if listened else None, fault, cancel, pages if progress else None)
            except Stopped:
                report.cancelled = True
                return
        if progress:
            progress(SyncProgress(root, len(entries), len(entries)))

    def sync_paths(self, paths: Iterable[Path]) -> SyncReport:
        """Re-check single files (the folder watcher's entry point)."""
        report = SyncReport()
        with self.lock.held():
            self.cache.ensure()
            ids = self.sources.ids()
            for path in paths:
                path = Path(path)
                path = path.parent.resolve() / path.name  # the link itself, not where it points
                source_id = self.sources.owner(path, ids)
                if source_id is None:
                    continue
                record = self.sources.file(path_key(path))
                entry = _entry(path, next(Path(r) for r, i in ids.items() if i == source_id))
                if entry is None:
                    if record is not None:
                        report.removed.append(record.path)
                        self.records.delete_files([record.id])
                    continue
                self._sync_entry(source_id, entry, record, report, None, None, None)
            self.cache.save()
        return report

    def _sync_entry(self, source_id: int, entry: Entry, record: File | None, report: SyncReport,
                    part: Callable[[int, int], None] | None, fault: Fault | None,
                    cancel: threading.Event | None, pages: Callable[[int, int], None] | None = None) -> None:
        path, key = entry.path, path_key(entry.path)
        if entry.problem is not None:
            self._record_problem(source_id, path, key, entry.problem, record, report)
            return
        try:
            st = path.stat()
        except OSError as exc:
            report.skipped.append(SkippedFile(key, f"cannot read: {exc.strerror or exc}"))
            return
        retry = record is not None and record.status in (FAILED, PENDING)  # PENDING: resume its embedding
        if record is not None and not retry and record.size == st.st_size and record.mtime == st.st_mtime:
            _unchanged(record, report)
            return
        try:
            digest = file_sha256(path)
        except OSError as exc:
            report.skipped.append(SkippedFile(key, f"cannot read: {exc.strerror or exc}"))
            return
        if record is not None and not retry and record.sha256 == digest:
            self.records.touch(record.id, st)
            _unchanged(record, report)
            return
        if record is not None and record.status == PENDING and record.sha256 == digest:
            if (record.size, record.mtime) != (st.st_size, st.st_mtime):
                self.records.touch(record.id, st)
            self._embed(record.id, key, part, fault, report, record.parts)  # resumed where it stopped
            return
        result = self.reader.load(path, cancel, pages)
        chunks: list[Any] = []
        if result.document is not None:
            try:
                chunks = self.encoder.chunker.chunk(result.document)
            except MemoryError:
                result = _failed(result, "ran out of memory cutting it into passages")
            except TooManyPassages as exc:  # for good: the same file gives as many next time
                result = LoadResult(path, reason=str(exc), loader=result.loader)
            except ArchivistError:
                raise  # not this file's fault (the encoder is not installed): stop the sync, say why once
            except Exception as exc:  # noqa: BLE001 - one file's text must not stop the others
                result = _failed(result, f"could not be cut into passages ({describe(exc)})")
            else:
                if not chunks:
                    result = LoadResult(path, reason="no text found", loader=result.loader)
        if fault:
            fault("before_commit", path)
        # Step 1: the passages and their words (searchable by keyword from here), no vectors
        result = self._write(source_id, Path(key), st, digest, result, chunks, None, record, fault)
        if result.document is None:
            report.skipped.append(SkippedFile(key, result.reason or "skipped"))
            return
        written = self.sources.file(key)
        assert written is not None  # just written
        if fault:
            fault("keyword_committed", path)
        # Step 2: their vectors, committed batch by batch (a kill resumes at the next sync)
        self._embed(written.id, key, part, fault, report, len(result.document.parts))

    def _embed(self, file_id: int, key: str, part: Callable[[int, int], None] | None, fault: Fault | None,
               report: SyncReport, pages: int) -> None:
        """Embed the file's passages still without a vector, shortest first, and commit them
        in batches of :data:`EMBED_COMMIT` (the passage alone: its header goes to the keyword index only,
        archivist.passage_meta). ``part`` may raise :class:`Stopped` between batches: what is committed
        stays, the file stays "embedding" and searchable by keyword, the next sync goes on."""
        ids, texts, total = self.records.unembedded(file_id)
        # Shortest first, as the encoder orders one call's texts: each batch then holds
        # passages of about the same length, padded as little as when embedded all at once.
        order = sorted(range(len(ids)), key=lambda n: (len(texts[n]), int(ids[n])))
        ids, texts = ids[order], [texts[n] for n in order]
        embed = self.encoder.embedder.embed
        done = total - len(ids)
        for start in range(0, len(ids), EMBED_COMMIT):
            batch = texts[start:start + EMBED_COMMIT]

            def within(n: int, _of: int, before: int = done) -> None:
                if part is not None:
                    part(before + n, total)

            try:
                vectors = embed(batch) if part is None else embed(batch, progress=within)
            except MemoryError:  # may pass: "failed", its passages go, read again at the next sync
                self.records.mark_failed(file_id, "ran out of memory embedding it")
                report.skipped.append(SkippedFile(key, "ran out of memory embedding it"))
                return
            last = start + EMBED_COMMIT >= len(ids)
            if fault:
                fault("before_vectors", Path(key))
            try:
                self.records.write_vectors(file_id, ids[start:start + EMBED_COMMIT], vectors, last)
            except StatementError as exc:
                cause = exc.orig if exc.orig is not None else exc
                if isinstance(exc, OperationalError) and "locked" not in str(cause):
                    raise ArchivistError(f"the index could not be written ({describe(cause)})") from exc
                # the file stays "embedding", searchable by keyword; the next sync goes on
                report.skipped.append(SkippedFile(key, f"searchable by keyword only: its vectors could not be "
                                                       f"saved ({describe(cause)}); the next sync tries again"))
                return
            done += len(batch)
        if not len(ids):
            self.records.write_vectors(file_id, ids, np.zeros((0, 0), dtype=np.float32), True)
        report.indexed.append(key)
        report.passages += total
        report.pages += pages

    def _write(self, source_id: int, path: Path, st: os.stat_result, digest: str, result: LoadResult,
               chunks: list[Any], vectors: Any, record: File | None, fault: Fault | None) -> LoadResult:
        """Write the file's rows; when that fails for this file's sake, record it as
        failed instead (and say so in the result)."""
        if result.reason is not None:
            result.reason = clean_text(result.reason)
        try:
            self.records.write_file(source_id, path, st, digest, result, chunks, vectors, record, fault)
            return result
        except StatementError as exc:
            cause = exc.orig if exc.orig is not None else exc
            if isinstance(exc, OperationalError) and "locked" not in str(cause):
                raise ArchivistError(f"the index could not be written ({describe(cause)})") from exc
            failed = _failed(result, f"could not be saved in the index ({describe(cause)})")
        try:
            self.records.write_file(source_id, path, st, digest, failed, [], None, record, None)
        except StatementError:
            pass  # reported in this sync's report; tried again at the next one
        return failed

    def _record_problem(self, source_id: int, path: Path, key: str, problem: str, record: File | None,
                        report: SyncReport) -> None:
        """A link or an unreadable folder: recorded as skipped with why, not read."""
        if record is not None and record.status == SKIPPED and record.reason == problem:
            _unchanged(record, report)
            return
        try:
            st = os.lstat(path)
        except OSError:
            st = os.stat_result((0,) * 10)
        self._write(source_id, Path(key), st, "", LoadResult(path, reason=problem), [], None, record, None)
        report.skipped.append(SkippedFile(key, problem))


def _failed(result: LoadResult, reason: str) -> LoadResult:
    return LoadResult(result.path, reason=reason, loader=result.loader, seconds=result.seconds, transient=True)


def _unchanged(record: File, report: SyncReport) -> None:
    report.unchanged += 1
    if record.status in (SKIPPED, FAILED):
        report.skipped.append(SkippedFile(record.path, record.reason or "skipped"))


def walk(root: Path) -> Iterator[Entry]:
    """What is under ``root`` (or ``root`` itself), sorted, skipping hidden and tool
    folders: the files to read, and, with the reason, what is left out and why (links,
    folders that cannot be listed, pipes and devices)."""
    root = Path(root)
    if not root.is_dir():
        entry = _entry(root.parent.resolve() / root.name, root.parent.resolve())
        if entry is not None:
            yield entry
        return
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append):
        while unreadable:
            yield _unreadable(unreadable.pop(0))
        kept = []
        for d in sorted(dirnames):
            if d.startswith(".") or d in SKIP_DIRS:
                continue
            p = Path(dirpath) / d
            if p.is_symlink():
                yield Entry(p, _link_problem(p, root))
            else:
                kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            entry = _entry(Path(dirpath) / name, root)
            if entry is not None:
                yield entry
    while unreadable:
        yield _unreadable(unreadable.pop(0))


def _unreadable(error: OSError) -> Entry:
    return Entry(Path(error.filename or "."), f"cannot read this folder: {error.strerror or error}")


def _entry(path: Path, root: Path) -> Entry | None:
    """What ``path`` is for a sync: a file to read, something recorded with the reason
    it is not read, or None (hidden, temporary, gone)."""
    name = path.name
    if name.startswith(".") or name.endswith((".tmp", "~")):
        return None
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return Entry(path, _link_problem(path, root))
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        return Entry(path, "not a regular file (a pipe, socket or device): not read")
    return Entry(path.resolve())


def _link_problem(link: Path, root: Path) -> str:
    """Why a symbolic link is not read. A link to a file the walk reaches is that file
    indexed twice; a link out of the source would index what the user did not add (a
    link to ~/.ssh, a network drive); so links are recorded, with where they point."""
    target = link.resolve()
    kind = "folder" if target.is_dir() else "file"
    if not target.exists():
        return f"a broken link (to {path_key(target)})"
    try:
        inside = target.relative_to(Path(root).resolve())
    except ValueError:
        inside = None
    if inside is not None and not any(p.startswith(".") or p in SKIP_DIRS for p in inside.parts):
        return f"a link to {path_key(target)}: not read twice, the {kind} is indexed under its own name"
    return (f"a link to a {kind} outside what is indexed ({path_key(target)}): links are not followed; "
            f"add the {kind} itself to index it")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
