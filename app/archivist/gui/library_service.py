"""The Library's indexing, run in a child process that lives as long as the window.

Indexing reads, chunks and embeds documents. Parsing and tokenizing are Python-side work
that holds the GIL (measured on ``../shared/data/formats`` from a thread: 83 ms without
a GIL release), which would freeze the window while an answer streams. So, like the
model (``archivist.engine.process``), the index is driven from a spawned process: it
opens the FAISS plugin's index exactly as ``archivist index`` does (with the loaders
other plugins registered), runs each request, and streams progress back over a pipe.
The same process watches the sources for changes while the app runs (the plugin's
``Watcher``); closing the service stops the watcher.

Qt-free: :class:`LibraryService` is the parent's end, a plain object; the Library page
adapts its messages to signals. Messages from the child are tuples:

``("state", {"sources": [...], "skipped": [...], "watching": [...]})``
    what is indexed, every skipped file with its reason, the folders being watched;
``("progress", done, total, path, root)``
    before each file of a sync (``path`` ``""`` when ``root`` is finished);
``("part", path, done, total, root)``
    chunks embedded so far while a file with many of them is embedded;
``("report", report_dict)`` / ``("removed", path, files)`` / ``("cancelled",)``
    the end of an ``index``/``sync`` or ``remove`` request;
``("watched", report_dict)``
    the watcher re-indexed changed files;
``("note", text)`` / ``("error", text)``
    a line to show (building the encoder) / a request that failed, in one line;
``("fatal", text)``
    the index could not be opened at all; the child has ended.
"""

from __future__ import annotations

import multiprocessing
import threading
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PLUGIN = "faiss"  # the built-in retrieval plugin's name (its entry point)


class IndexingCancelled(Exception):
    """Raised from the progress callback to stop a sync between two files."""


class LibraryService:
    """The parent's end: send requests, read messages (blocking; use a thread)."""

    def __init__(self, home: Path, *, safe_mode: bool = False, watch: bool = True) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe()
        self._cancel = ctx.Event()
        self._send_lock = threading.Lock()
        self._process = ctx.Process(
            target=_serve, args=(child_end, str(home), safe_mode, watch, self._cancel),
            name="archivist-library", daemon=True,
        )
        self._process.start()
        child_end.close()
        self.closed = False

    def request(self, *request: Any) -> None:
        """``("index", [paths])``, ``("sync",)``, ``("remove", path)``, ``("state",)``, ``("watch", on)``."""
        if request[0] in ("index", "sync"):
            self._cancel.clear()
        with self._send_lock:
            self._conn.send(request)

    def cancel(self) -> None:
        """Stop the running sync before its next file (what is indexed stays)."""
        self._cancel.set()

    def receive(self) -> tuple[Any, ...] | None:
        """The next message, or None once the child has ended."""
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            return None

    def close(self, timeout: float = 3.0) -> None:
        """Stop the watcher and the child without keeping the window waiting.

        A sync stops before its next file; one big file (a long PDF takes minutes) is not
        waited for: after ``timeout`` the child is terminated. Nothing is lost by that:
        each file is written in one transaction and the vector file by a rename, so the
        file being read is simply indexed again by the next sync.
        """
        if self.closed:
            return
        self.closed = True
        self._cancel.set()
        if self._process.is_alive():
            try:
                with self._send_lock:
                    self._conn.send(("close",))
            except OSError:
                pass
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)

    @property
    def alive(self) -> bool:
        return self._process.is_alive()


def _describe(exc: BaseException) -> str:
    from archivist.errors import ArchivistError

    if isinstance(exc, (ArchivistError, FileNotFoundError)):
        return str(exc)
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "not found"
    return f"unexpected {type(exc).__name__}: {exc}"


def _serve(conn: Connection, home: str, safe_mode: bool, watch: bool, cancel: Any) -> None:
    """The child: open the index as ``archivist index`` does, then serve requests."""
    import os

    import archivist  # noqa: F401  (switches telemetry off before onnxruntime loads)

    if hasattr(os, "nice"):
        # Background work: on a machine with few cores the window and the model answering
        # get the CPU first (measured on 2 cores: UI stall 93 ms at equal priority).
        try:
            os.nice(10)
        except OSError:
            pass

    lock = threading.Lock()

    def send(*message: Any) -> None:
        with lock:
            try:
                conn.send(message)
            except OSError:
                pass  # the parent has gone; the loop below ends on its next read

    try:
        from archivist.application import Application
        from archivist_faiss.index import open_index
        from archivist_faiss.loading import builtin_loaders

        app = Application(home, safe_mode=safe_mode)
        own = {type(loader) for loader in builtin_loaders()}
        others = [loader for loader in app.host.context.loaders() if type(loader) not in own]
        index = open_index(Path(home), loaders=others, progress=lambda text: send("note", text))
    except Exception as exc:
        send("fatal", _describe(exc))
        return

    watcher: Any = None
    watching = watch

    def state() -> dict[str, Any]:
        return {
            "sources": index.sources(),
            "skipped": [f for f in index.files() if f["status"] == "skipped"],
            "watching": [str(r) for r in watcher.roots] if watcher is not None else [],
        }

    def on_watched(report: Any) -> None:
        send("watched", report.to_dict())
        send("state", state())

    def rewatch() -> None:
        nonlocal watcher
        if watcher is not None:
            watcher.stop()
            watcher = None
        if not watching:
            return
        roots = [Path(s["path"]) for s in index.sources() if Path(s["path"]).exists()]
        if roots:
            from archivist_faiss.watch import Watcher

            try:
                watcher = Watcher(index, roots, on_sync=on_watched).start()
            except Exception as exc:  # an OS watch limit, say: indexing still works
                send("error", f"cannot watch the folders for changes: {_describe(exc)}")

    def progress(done: int, total: int, path: str, root: str) -> None:
        if cancel.is_set():
            raise IndexingCancelled()
        send("progress", done, total, path, root)

    def part(path: str, done: int, total: int, root: str) -> None:
        # Checked between batches too, so Stop answers within a second even in a
        # 600-page PDF; the file is then left as it was and redone by the next sync.
        if cancel.is_set():
            raise IndexingCancelled()
        if total > 64:
            send("part", path, done, total, root)

    def run_sync(roots: list[str] | None) -> None:
        from archivist_faiss.index import SyncReport

        total = SyncReport()
        if roots is None:
            roots = [s["path"] for s in index.sources()]
        for root in roots:
            report = index.sync([root], progress=partial(progress, root=root), part_progress=partial(part, root=root))
            total.indexed += report.indexed
            total.unchanged += report.unchanged
            total.removed += report.removed
            total.skipped += report.skipped
            total.chunks += report.chunks
            total.pages += report.pages
            total.seconds += report.seconds
        send("report", total.to_dict())

    send("state", state())
    rewatch()
    if watcher is not None:
        send("state", state())
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        kind = request[0]
        if kind == "close":
            break
        try:
            if kind == "index":
                roots = [index.add_source(Path(p)) for p in request[1]]
                send("state", state())
                run_sync(roots)
            elif kind == "sync":
                run_sync(None)
            elif kind == "remove":
                files = index.remove_source(request[1])
                send("removed", str(request[1]), files)
            elif kind == "watch":
                watching = bool(request[1])
            if kind in ("index", "sync", "remove", "watch"):
                rewatch()
        except IndexingCancelled:
            send("cancelled")
        except Exception as exc:
            send("error", _describe(exc))
        try:
            send("state", state())
        except Exception as exc:
            send("error", _describe(exc))
    if watcher is not None:
        watcher.stop()
    index.close()
    app.close()
