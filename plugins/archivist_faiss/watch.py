"""Keeping the index current while the app runs: watchdog events, debounced, re-synced.

Events only name paths; the work is done by :meth:`Index.sync_paths`, which compares
size, mtime and content hash like a full sync, so a burst of events for one save costs
one re-index. The sync runs on the watcher's own thread, one batch at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class Watcher:
    def __init__(self, index: Any, roots: Iterable[Path], debounce_s: float = 1.0,
                 on_sync: Callable[[Any], None] | None = None) -> None:
        self.index = index
        self.roots = [Path(r) for r in roots]
        self.debounce_s = debounce_s
        self.on_sync = on_sync
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> Watcher:
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

        self._observer = Observer()
        for root in self.roots:
            self._observer.schedule(Handler(), str(root if root.is_dir() else root.parent), recursive=True)
        self._observer.start()
        self._thread = threading.Thread(target=self._run, name="archivist-faiss-watch", daemon=True)
        self._thread.start()
        return self

    def _note(self, path: str) -> None:
        name = Path(path).name
        if name.startswith(".") or name.endswith((".tmp", "~")):
            return
        with self._lock:
            self._pending[path] = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                ready = [p for p, t in self._pending.items() if now - t >= self.debounce_s]
                for p in ready:
                    del self._pending[p]
            if ready:
                expanded: list[Path] = []
                for p in ready:
                    path = Path(p)
                    expanded.extend(sorted(x for x in path.rglob("*") if x.is_file()) if path.is_dir() else [path])
                report = self.index.sync_paths(expanded)
                if self.on_sync and (report.indexed or report.removed):
                    self.on_sync(report)

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=30)


def watch_forever(index: Any, roots: Iterable[Path], on_sync: Callable[[Any], None] | None = None) -> None:
    watcher = Watcher(index, roots, on_sync=on_sync).start()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
