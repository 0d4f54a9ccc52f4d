"""The library: the folders answers come from, their syncing, and what was skipped.

A core service (rule 9) over whichever plugin provides a :class:`~archivist.Library`:
the first enabled ``register_libraries`` contribution in hook order (the built-in FAISS
plugin's, unless a third-party plugin provides its own). ``archivist index`` and
``archivist sources`` render it; the window's Library page drives it in a child
process (:mod:`archivist.library_process`). Neither knows which plugin it is.

Every call goes through the plugin host's guard, so a library that raises is
disabled for the session and reported, and the service says why it has no library
(:meth:`LibraryService.problem`) rather than failing. Qt-free and plugin-free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archivist.errors import ArchivistError, PluginFailure
from archivist.protocols import Closable, WatchesSources, Writable
from archivist.types import LibrarySource, SkippedFile, SyncProgress, SyncReport

if TYPE_CHECKING:
    from archivist.plugins import Contribution, PluginHost, PluginRecord
    from archivist.protocols import Watching

HOOK = "register_libraries"


class NoLibrary(ArchivistError):
    """No enabled plugin provides a library; the message says why, in a sentence."""


class ReadOnlyLibrary(ArchivistError):
    """This user may not change the library (:class:`~archivist.protocols.Writable`);
    the message is the library's own line saying why."""


class LibraryService:
    """The user's library, as the front ends use it (see the module's docstring)."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    # -- which library ----------------------------------------------------------------

    def contribution(self) -> Contribution[Any] | None:
        """The library in use: the first enabled one in hook order (None: there is none)."""
        found = self.host.libraries()
        return found[0] if found else None

    @property
    def available(self) -> bool:
        return self.contribution() is not None

    @property
    def name(self) -> str:
        """The library's name ("" when there is none)."""
        contribution = self.contribution()
        return "" if contribution is None else str(getattr(contribution.obj, "name", contribution.plugin))

    def problem(self) -> str:
        """Why there is no library here, in a sentence; "" when there is one."""
        if self.available:
            return ""
        off = _switched_off(self.host)
        if off is None:
            return ("Document search is not installed: no plugin provides a library, so there is "
                    "nothing to add folders to. Reinstall Archivist to get the built-in one back.")
        why = off.errors[-1].message if off.errors else "you switched it off"
        return (f"Document search is off: the plugin “{off.name}”, which provides the library, is "
                f"disabled ({why}). Switch it on in Plugins and restart Archivist to index folders; "
                "until then answers come from the model alone.")

    def _run(self, method: str, *args: Any) -> Any:
        contribution = self.contribution()
        if contribution is None:
            raise NoLibrary(self.problem())
        return self.host.run(contribution, method, *args)

    # -- reading ----------------------------------------------------------------------

    def sources(self) -> list[LibrarySource]:
        """The folders and files added, with what each holds ([] without a library)."""
        return list(self._run("sources")) if self.available else []

    def has_sources(self) -> bool:
        """Whether any folder was added (cheap: read at the window's start-up)."""
        try:
            return bool(self.sources())
        except PluginFailure:
            return False

    def skipped(self) -> list[SkippedFile]:
        """Every file left out at its last sync, with the reason ([] without a library)."""
        return list(self._run("skipped")) if self.available else []

    def count(self) -> int:
        """Passages searchable now (0 without a library)."""
        return int(self._run("count")) if self.available else 0

    def read_only(self) -> str:
        """Why this user may not add, index or remove sources, in one line (the library's
        own, :class:`~archivist.protocols.Writable`); "" when they may, when the library
        cannot tell (it is then writable), and when there is no library."""
        contribution = self.contribution()
        if contribution is None or not isinstance(contribution.obj, Writable):
            return ""
        return str(self.host.run(contribution, "read_only") or "")

    def _writable(self) -> None:
        reason = self.read_only()
        if reason:
            raise ReadOnlyLibrary(reason)

    # -- changing ---------------------------------------------------------------------

    def add(self, path: Path | str) -> str:
        """Add ``path`` (a folder or a file) without indexing it yet; its source key.
        :class:`ReadOnlyLibrary` when this user may not change the library."""
        self._writable()
        return str(self._run("add_source", Path(path)))

    def index(self, paths: Sequence[Path | str], progress: Callable[[SyncProgress], None] | None = None,
              cancel: threading.Event | None = None) -> SyncReport:
        """Add each of ``paths`` (folders or files) and bring them up to date."""
        return self.sync([self.add(p) for p in paths], progress, cancel)

    def sync(self, roots: Sequence[str] | None = None, progress: Callable[[SyncProgress], None] | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        """Bring ``roots`` (source keys; None: every source) up to date."""
        self._writable()
        report: SyncReport = self._run("sync", None if roots is None else list(roots), progress, cancel)
        return report

    def remove(self, path: str) -> int:
        """Forget the source ``path`` and what was indexed from it; the files removed."""
        self._writable()
        return int(self._run("remove_source", path))

    def prune(self) -> list[LibrarySource]:
        """Forget every source whose folder or file is gone (``archivist sources prune``);
        the sources removed."""
        gone = [source for source in self.sources() if source.missing]
        for source in gone:
            self.remove(source.path)
        return gone

    def watch(self, roots: Sequence[str], on_change: Callable[[SyncReport], None]) -> Watching | None:
        """Keep ``roots`` up to date as files change; None when the library cannot watch."""
        contribution = self.contribution()
        if contribution is None or not isinstance(contribution.obj, WatchesSources):
            return None
        watching: Watching = self.host.run(contribution, "watch", list(roots), on_change)
        return watching

    def close(self) -> None:
        """Let the library free its files and memory (it reopens them when used again)."""
        contribution = self.contribution()
        if contribution is not None and isinstance(contribution.obj, Closable):
            try:
                self.host.run(contribution, "close")
            except PluginFailure:
                pass  # reported and disabled by the host


def _switched_off(host: PluginHost) -> PluginRecord | None:
    """The disabled plugin that would provide the library: one known to implement the
    hook, else one never loaded (switched off before it was imported, or failed to load),
    Archivist's own first."""
    off = [r for r in host.records.values() if not r.enabled and r.origin != "core"]
    known = [r for r in off if HOOK in r.hooks(host.pm)]
    unloaded = [r for r in off if host.pm.get_plugin(r.name) is None]
    for record in sorted(known or unloaded, key=lambda r: (not r.builtin, r.name)):
        return record
    return None


def summary_line(report: SyncReport) -> str:
    """What a sync did, in one line for people."""
    return (f"{len(report.indexed)} indexed ({report.pages} pages, {report.passages} passages), "
            f"{report.unchanged} unchanged, {len(report.removed)} removed, "
            f"{len(report.skipped)} skipped in {report.seconds:.1f} s"
            + (" (stopped before the end)" if report.cancelled else ""))
