"""Keeping the index current while the app runs: watchdog events, debounced, re-synced.

Events only name paths; the work is done by :meth:`Index.sync_paths`, which compares
size, mtime and content hash like a full sync, so a burst of events for one save costs
one re-index. The sync runs on the watcher's own thread, one batch at a time. A
:class:`Watcher` is what :meth:`FaissLibrary.watch` returns (``archivist.Watching``);
it sets up the watches on its own thread and waits for them at most
:data:`SETUP_WAIT_S`, since that takes one system call per folder (long for a deep tree)
and ``watch`` is called under a time limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from archivist import ArchivistError, SyncReport

log = logging.getLogger(__name__)

SETUP_WAIT_S = 3.0


class Watcher:
    def __init__(self, index: Any, roots: Iterable[Path | str], debounce_s: float = 1.0,
                 on_sync: Callable[[SyncReport], None] | None = None) -> None:
        self.index = index
        self.roots = [str(r) for r in roots]
        self.debounce_s = debounce_s
        self.on_sync = on_sync
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self._set_up = threading.Event()
        self._failure: Exception | None = None
        self._waited = False  # start() returned: a later failure is logged, not raised

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, name="archivist-faiss-watch", daemon=True)
        self._thread.start()
        self._set_up.wait(SETUP_WAIT_S)  # a small tree is watched on return; a deep one soon after
        with self._lock:
            self._waited = True
            failure = self._failure
        if failure is not None:  # an OS limit on watches, say: indexing still works
            raise ArchivistError(f"{', '.join(self.roots)}: {failure}") from failure
        return self

    def _observe(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory and event.event_type != "moved":
                    return
                for attr in ("src_path", "dest_path"):
                    p = getattr(event, attr, None)
                    if p:
                        watcher._note(str(p))

        observer = Observer()
        for root in map(Path, self.roots):
            observer.schedule(Handler(), str(root if root.is_dir() else root.parent), recursive=True)
        observer.start()
        with self._lock:
            self._observer = observer
        if self._stop.is_set():  # stopped while the watches were set up
            self._stop_observer()

    def _note(self, path: str) -> None:
        name = Path(path).name
        if name.startswith(".") or name.endswith((".tmp", "~")):
            return
        with self._lock:
            self._pending[path] = time.monotonic()

    def _run(self) -> None:
        try:
            self._observe()
        except Exception as exc:
            with self._lock:
                self._failure, late = exc, self._waited
            if late:
                log.warning("cannot watch %s for changes: %s", ", ".join(self.roots), exc)
            return
        finally:
            self._set_up.set()
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                ready = [p for p, t in self._pending.items() if now - t >= self.debounce_s]
                for p in ready:
                    del self._pending[p]
            if ready:
                try:
                    self._sync(ready)
                except Exception:  # one bad batch must not end the watching
                    log.exception("re-indexing changed files failed")

    def _sync(self, ready: list[str]) -> None:
        from archivist_faiss.ingestion import walk

        expanded: list[Path] = []
        for p in ready:
            path = Path(p)
            if path.is_dir() and not path.is_symlink():  # a folder moved in: what a sync would read of it
                expanded.extend(entry.path for entry in walk(path))
            else:
                expanded.append(path)
        report = self.index.sync_paths(expanded)
        if self.on_sync and (report.indexed or report.removed):
            self.on_sync(report)

    def stop(self) -> None:
        self._stop.set()
        self._stop_observer()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._stop_observer()  # in case the thread set it up meanwhile

    def _stop_observer(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
