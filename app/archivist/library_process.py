"""The library, run in a child process that lives as long as the window.

Indexing reads, chunks and embeds documents. Parsing and tokenizing are Python-side work
that holds the GIL (measured on ``../shared/data/formats`` from a thread: 83 ms without
a GIL release), which would freeze the window while an answer streams. So, like the
model (:mod:`archivist.engine.process`), the library is driven from a spawned process
(:mod:`archivist.child_process`) at a lower priority: it makes the application's
:class:`~archivist.library.LibraryService` exactly as ``archivist index`` does, runs each
request, and streams progress back. The same process watches the sources for changes
while the app runs (when the library can); closing it stops the watching.

Qt-free: :class:`LibraryProcess` is the parent's end, a plain object; the Library page
adapts its replies to signals. Requests and replies are the dataclasses below.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archivist.child_process import Channel, ChildEnded, ChildProcess
from archivist.types import LibrarySource, SkippedFile, SyncProgress, SyncReport

if TYPE_CHECKING:
    from archivist.library import LibraryService
    from archivist.protocols import Watching

# -- requests (parent to child) ---------------------------------------------------------


@dataclass(frozen=True)
class IndexPaths:
    """Add these folders or files as sources and bring them up to date."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class SyncSources:
    """Bring every source up to date."""


@dataclass(frozen=True)
class RemoveSource:
    """Forget the source ``path`` and what was indexed from it."""

    path: str


@dataclass(frozen=True)
class SetWatching:
    """Watch the sources for changes (``on``), or stop."""

    on: bool


@dataclass(frozen=True)
class AskState:
    """Send the :class:`LibraryState` again."""


@dataclass(frozen=True)
class Close:
    """Stop watching and end the process."""


Request = IndexPaths | SyncSources | RemoveSource | SetWatching | AskState | Close

# -- replies (child to parent) ----------------------------------------------------------


@dataclass(frozen=True)
class LibraryState:
    """What is indexed, every skipped file with its reason, the sources being watched,
    and why this user may not change the library ("" when they may:
    :meth:`~archivist.library.LibraryService.read_only`). Sent at start, after each
    request, and after the watcher re-synced."""

    sources: tuple[LibrarySource, ...]
    skipped: tuple[SkippedFile, ...]
    watching: tuple[str, ...]
    read_only: str = ""


@dataclass(frozen=True)
class Progress:
    """How far the running sync is."""

    progress: SyncProgress


@dataclass(frozen=True)
class Report:
    """An :class:`IndexPaths` or :class:`SyncSources` request finished."""

    report: SyncReport


@dataclass(frozen=True)
class Cancelled:
    """The running sync stopped when asked; ``report`` is what it did before."""

    report: SyncReport


@dataclass(frozen=True)
class Removed:
    """A :class:`RemoveSource` request finished: ``files`` were forgotten."""

    path: str
    files: int


@dataclass(frozen=True)
class Watched:
    """Files changed on disk and the watcher brought them up to date."""

    report: SyncReport


@dataclass(frozen=True)
class Note:
    """A line to show while working (the library building its encoder once, say)."""

    text: str


@dataclass(frozen=True)
class Failed:
    """A request failed; what happened, in one line. The process goes on."""

    text: str


@dataclass(frozen=True)
class Fatal:
    """There is no library to drive (none installed, its plugin off or failed); the
    process has ended."""

    text: str


Reply = LibraryState | Progress | Report | Cancelled | Removed | Watched | Note | Failed | Fatal


class LibraryProcess:
    """The parent's end: send requests, read replies (blocking; use a thread)."""

    def __init__(self, home: Path, *, safe_mode: bool = False, watch: bool = True) -> None:
        self.child = ChildProcess(serve, (str(home), safe_mode, watch), name="archivist-library",
                                  starts_children=True)  # the index's reader

    def send(self, request: Request) -> None:
        if isinstance(request, (IndexPaths, SyncSources)):
            self.child.clear_cancel()
        self.child.send(request)

    def cancel(self) -> None:
        """Stop the running sync before its next file or batch (what is indexed stays)."""
        self.child.cancel()

    def receive(self) -> Reply | None:
        """The next reply, or None once the child has ended."""
        try:
            message: Any = self.child.receive()
        except ChildEnded:
            return None
        return message

    def close(self, timeout: float = 3.0) -> None:
        """Stop the watching and the child without keeping the window waiting.

        A sync stops before its next file or batch; one big file is not waited for:
        after ``timeout`` the child is terminated. Nothing is lost by that: a library
        writes each file whole or not at all (the contract), so the file being read is
        simply indexed again by the next sync.
        """
        self.child.close(goodbye=Close(), timeout=timeout)

    @property
    def alive(self) -> bool:
        return self.child.alive


# -- the child --------------------------------------------------------------------------


def serve(channel: Channel, home: str, safe_mode: bool, watch: bool) -> None:
    """The child: make the library as ``archivist index`` does, then serve requests."""
    _lower_priority()
    _forward_log(channel)
    try:
        from archivist.application import Application

        app = Application(home, safe_mode=safe_mode)
    except Exception as exc:
        channel.send(Fatal(describe(exc)))
        return
    server = Server(channel, app.library, watch)
    try:
        server.run()
    finally:
        server.stop_watching()
        app.library.close()
        app.close()


def _lower_priority() -> None:
    """Background work: on a machine with few cores the window and the model answering
    get the CPU first (measured on 2 cores: UI stall 93 ms at equal priority)."""
    import os

    if hasattr(os, "nice"):
        try:
            os.nice(10)
        except OSError:
            pass


class _NoteHandler(logging.Handler):
    def __init__(self, channel: Channel) -> None:
        super().__init__(logging.WARNING)
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        self.channel.send(Note(record.getMessage()))


def _forward_log(channel: Channel) -> None:
    """What the library says while it works (a warning such as building its encoder
    once) is shown by the page, as ``archivist index`` prints it on stderr."""
    logging.getLogger().addHandler(_NoteHandler(channel))


class ParentStop(threading.Event):
    """The parent's Stop, as the ``threading.Event`` a library's sync checks."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel

    def is_set(self) -> bool:
        return self.channel.cancelled

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


class Server:
    """Serves one parent's requests over the library, one at a time."""

    def __init__(self, channel: Channel, library: LibraryService, watch: bool) -> None:
        self.channel = channel
        self.library = library
        self.wants_watching = watch
        self.watching: Watching | None = None
        self.parent_stop = ParentStop(channel)
        self.handlers: dict[type, Callable[[Any], None]] = {
            IndexPaths: self.index, SyncSources: self.sync, RemoveSource: self.remove,
            SetWatching: self.set_watching, AskState: lambda _request: None,
        }

    def run(self) -> None:
        if not self.library.available:
            self.channel.send(Fatal(self.library.problem()))
            return
        self.send_state()
        self.rewatch()
        if self.watching is not None:
            self.send_state()
        while True:
            request = self.channel.receive()
            if request is None or isinstance(request, Close):
                return
            self.handle(request)
            if not self.library.available:  # its plugin failed and was disabled
                self.channel.send(Fatal(self.library.problem()))
                return

    def handle(self, request: object) -> None:
        handler = self.handlers.get(type(request))
        try:
            if handler is None:
                raise TypeError(f"not a library request: {request!r:.80}")
            handler(request)
        except Exception as exc:
            self.channel.send(Failed(describe(exc)))
        try:
            self.send_state()
        except Exception as exc:
            self.channel.send(Failed(describe(exc)))

    def send_state(self) -> None:
        watching = tuple(self.watching.roots) if self.watching is not None else ()
        self.channel.send(LibraryState(tuple(self.library.sources()), tuple(self.library.skipped()), watching,
                                       self.library.read_only()))

    def progress(self, progress: SyncProgress) -> None:
        self.channel.send(Progress(progress))

    def finish(self, report: SyncReport) -> None:
        self.channel.send(Cancelled(report) if report.cancelled else Report(report))
        self.rewatch()

    def index(self, request: IndexPaths) -> None:
        roots = [self.library.add(path) for path in request.paths]
        self.send_state()  # the new sources show at once
        self.finish(self.library.sync(roots, self.progress, self.parent_stop))

    def sync(self, _request: SyncSources) -> None:
        self.finish(self.library.sync(None, self.progress, self.parent_stop))

    def remove(self, request: RemoveSource) -> None:
        files = self.library.remove(request.path)
        self.channel.send(Removed(request.path, files))
        self.rewatch()

    def set_watching(self, request: SetWatching) -> None:
        self.wants_watching = request.on
        self.rewatch()

    def rewatch(self) -> None:
        """Watch the sources that exist now (after a request changed them), if wanted."""
        self.stop_watching()
        if not self.wants_watching or self.library.read_only():  # (a sync would be refused)
            return
        roots = [s.path for s in self.library.sources() if Path(s.path).exists()]
        if not roots:
            return
        try:
            self.watching = self.library.watch(roots, self.changed)
        except Exception as exc:  # an OS watch limit, say: indexing still works
            self.channel.send(Failed(f"cannot watch the folders for changes: {describe(exc)}"))

    def stop_watching(self) -> None:
        if self.watching is not None:
            watching, self.watching = self.watching, None
            watching.stop()

    def changed(self, report: SyncReport) -> None:
        """From the watcher's thread: files changed on disk were synced."""
        self.channel.send(Watched(report))
        self.send_state()


def describe(exc: BaseException) -> str:
    """An exception as the one line the page shows."""
    from archivist.errors import ArchivistError

    if isinstance(exc, (ArchivistError, FileNotFoundError)):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
