"""The index as the user's library (``archivist.Library``): what ``archivist index``,
``archivist sources`` and the window's Library page drive, through the core.

The index itself is opened on the first change (adding, removing, syncing, watching):
listing sources, skipped files and the passage count read the database with the
standard library (:mod:`catalog`), so asking them at start-up loads nothing heavy.
Loaders other plugins registered are used beside the built-in ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from archivist import LibrarySource, PluginContext, SkippedFile, SyncProgress, SyncReport
from archivist_faiss import catalog, integrity
from archivist_faiss.integrity import reports_damage

T = TypeVar("T")


class FaissLibrary:
    """The library over the index in ``<home>/plugins/faiss`` (also ``archivist.WatchesSources``,
    ``archivist.Closable`` and ``archivist.Repairable``). A damaged index is one line saying
    to run ``archivist doctor --repair`` (:mod:`integrity`)."""

    name = "faiss"

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.home = Path(context.home)
        self.database = catalog.database_path(self.home)
        self._index: Any = None
        self._opening = threading.Lock()

    @property
    @reports_damage
    def index(self) -> Any:
        with self._opening:
            if self._index is None:
                from archivist_faiss.index import open_index
                from archivist_faiss.reading import Limits

                self._index = open_index(self.home, loaders=self._other_loaders(), safe_mode=self.context.safe_mode,
                                         limits=Limits.from_settings(self.context.settings))
            return self._index

    def _other_loaders(self) -> list[Any]:
        """Loaders other plugins registered (the built-in ones are the index's own)."""
        from archivist_faiss.loading import builtin_loaders

        own = {type(loader) for loader in builtin_loaders()}
        return [loader for loader in self.context.loaders() if type(loader) not in own]

    @reports_damage
    def _read(self, query: Callable[[Any], T], empty: T) -> T:
        found = catalog.read(self.database, query, empty)
        if found is not None:
            return found
        with self.index.engine.connect() as conn:  # not readable read-only: ask the index
            return query(conn.connection.driver_connection)

    def sources(self) -> list[LibrarySource]:
        return self._read(catalog.sources, [])

    def skipped(self) -> list[SkippedFile]:
        return self._read(catalog.skipped, [])

    def count(self) -> int:
        return self._read(catalog.count, 0)

    @reports_damage
    def add_source(self, path: Path) -> str:
        key: str = self.index.add_source(path)
        return key

    @reports_damage
    def remove_source(self, path: str) -> int:
        removed: int = self.index.remove_source(path)
        return removed

    @reports_damage
    def sync(self, roots: Sequence[str] | None = None, progress: Callable[[SyncProgress], None] | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        report: SyncReport = self.index.sync(roots, progress, cancel)
        return report

    def watch(self, roots: Sequence[str], on_change: Callable[[SyncReport], None]) -> Any:
        from archivist_faiss.watch import Watcher

        return Watcher(self.index, roots, on_sync=on_change).start()

    def close(self) -> None:
        with self._opening:
            if self._index is not None:
                self._index.close()
                self._index = None

    def check(self) -> list[str]:
        """Damage to the index's files, one line each (``archivist doctor``)."""
        return integrity.check(self.database)

    def repair(self) -> list[str]:
        """Move a damaged index aside and start a new one (``archivist doctor --repair``)."""
        self.close()
        return integrity.repair(self.database)
