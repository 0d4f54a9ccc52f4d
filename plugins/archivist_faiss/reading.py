"""Reading files in a child process, under per-file ceilings of memory and time.

A loader parses formats that can be made hostile, and may be a third party's code: a
253-byte ODT asked for 2 GB of spaces, a 1.5 MB .docx unpacked to 500 MB of XML, a hung
parser held a run for minutes. So the index reads each file in a child process
(``archivist.ChildProcess``) that it keeps for the next file. The child makes its own
plugin host from the home (``archivist.collect_loaders``), so other plugins' loaders
read there as they would in the app, and caps its memory (``archivist.limit_memory``:
``RLIMIT_AS`` on Linux, a watchdog on its resident memory elsewhere). The parent waits
for each file at most the time limit. A child that goes over either ceiling, or
crashes, is replaced by a new one, and the file is skipped with one line that says
which ("used more than 768 MB while reading it: a decompression bomb?", "took longer
than 120 s to read"); it is tried again at the next sync, since a busy machine may have
been why. A page read by OCR takes seconds, so a loader that reports such pages
(:func:`~archivist_faiss.loading.report_pages`) gets :attr:`Limits.page_s` more for
each: the wait is stretched to at least that long after each report, and the reports
reach the progress bar.

A document comes back one part per message, so no message is the size of the whole.
A loader the child does not have (handed to the index by a program that embeds
Archivist, rather than registered by an installed plugin) is sent to it when it can be
pickled, and otherwise reads in this process, as before; so does every file if the
child cannot start.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archivist import Document, DocumentPart, UnreadableDocument
from archivist_faiss.loading import (
    DEFAULT_PAGE_TIME_S,
    DEFAULT_TIME_LIMIT_S,
    LoaderRegistry,
    LoadResult,
    PageProgress,
    describe,
    reporting_pages,
)

log = logging.getLogger(__name__)

DEFAULT_MEMORY_MB = 768
STARTUP_S = 60.0  # for the child to start and collect the loaders, not counted per file
POLL_S = 0.1  # how often a wait looks at the cancel flag


class Stopped(Exception):
    """Cancel was seen while a file was read or embedded: the file is left as it was."""


@dataclass(frozen=True)
class Limits:
    """What reading one file may cost: memory beyond the idle reader's, and time (plus
    ``page_s`` for each page its loader reads by OCR)."""

    memory_mb: float = DEFAULT_MEMORY_MB
    time_s: float = DEFAULT_TIME_LIMIT_S
    page_s: float = DEFAULT_PAGE_TIME_S

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Limits:
        """``[retrieval] reading_memory_mb``, the host's time limit for a loader
        (``[plugins.timeouts] "DocumentLoader.load"``, or the bare ``load``) and
        ``[retrieval] ocr_page_seconds``."""
        retrieval = settings.get("retrieval") or {}
        memory = _number(retrieval.get("reading_memory_mb"), DEFAULT_MEMORY_MB)
        timeouts = (settings.get("plugins") or {}).get("timeouts") or {}
        limit = timeouts.get("DocumentLoader.load", timeouts.get("load")) if isinstance(timeouts, dict) else None
        return cls(memory, _number(limit, DEFAULT_TIME_LIMIT_S),
                   _number(retrieval.get("ocr_page_seconds"), DEFAULT_PAGE_TIME_S))


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


# -- messages (parent to child) ---------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """Read the file at ``path`` with the loader known by ``loader`` (:func:`loader_key`)."""

    path: str
    loader: str


@dataclass(frozen=True)
class Adopt:
    """Read with these loaders too (the parent's that the child's plugins did not register),
    each pickled on its own, so one the child cannot unpickle is only left out. Sent once,
    after the first :class:`Ready`; the child answers with another."""

    loaders: tuple[bytes, ...]


@dataclass(frozen=True)
class Stop:
    """End the child."""


# -- messages (child to parent) ---------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The child is up, with these loaders (their keys)."""

    loaders: tuple[str, ...]


@dataclass(frozen=True)
class Part:
    """One part of the document being read; :class:`Loaded` follows the last."""

    part: DocumentPart


@dataclass(frozen=True)
class Pages:
    """``done`` of the ``total`` slow pages (OCR) of the file being read are read."""

    done: int
    total: int


@dataclass(frozen=True)
class Loaded:
    """The document read, its parts sent before it (``document.parts`` is empty)."""

    document: Document
    seconds: float


@dataclass(frozen=True)
class NotRead:
    """The loader refused the file (``transient``: it failed rather than refused)."""

    reason: str
    transient: bool


@dataclass(frozen=True)
class NoLoader:
    """The child has no loader by that key: the parent reads the file itself."""


def loader_key(loader: Any) -> str:
    """A loader's name across processes: its class and its name."""
    kind = type(loader)
    return f"{kind.__module__}.{kind.__qualname__}:{getattr(loader, 'name', '')}"


# -- the parent's end -------------------------------------------------------------------


@dataclass
class _Child:
    process: Any
    loaders: frozenset[str] = field(default_factory=frozenset)


class Reader:
    """Reads files for the index in a child process (see the module's docstring);
    ``load`` has the signature of :meth:`LoaderRegistry.load`."""

    def __init__(self, registry: LoaderRegistry, home: Path, *, safe_mode: bool = False,
                 limits: Limits | None = None) -> None:
        self.registry = registry
        self.home = Path(home)
        self.safe_mode = safe_mode
        self.limits = limits or Limits()
        self._child: _Child | None = None
        self._failed_starts = 0

    def load(self, path: Path, cancel: threading.Event | None = None,
             progress: PageProgress | None = None) -> LoadResult:
        path = Path(path)
        loader, skipped = self.registry.check(path)
        if skipped is not None:
            return skipped
        key = loader_key(loader)
        child = self._started()
        if child is None or key not in child.loaders:
            return self.registry.load(path, progress=progress)
        return self._read(child, path, loader, key, cancel, progress)

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.process.close(goodbye=Stop(), timeout=2.0)

    # -- internals ------------------------------------------------------------------------

    def _started(self) -> _Child | None:
        if self._child is not None and self._child.process.alive:
            return self._child
        self._end_child()
        if self._failed_starts >= 2:
            return None
        from archivist import ChildEnded, ChildProcess

        process = None
        try:
            process = ChildProcess(serve, (str(self.home), self.safe_mode, self.limits.memory_mb),
                                   name="archivist-reader")
            ready = process.receive(timeout=STARTUP_S)
            if not isinstance(ready, Ready):
                raise ChildEnded("archivist-reader", process.exitcode)
            process.send(Adopt(self._picklable(loader for loader in self.registry.by_ext.values()
                                               if loader_key(loader) not in ready.loaders)))
            ready = process.receive(timeout=STARTUP_S)
            if not isinstance(ready, Ready):
                raise ChildEnded("archivist-reader", process.exitcode)
        except (ChildEnded, OSError, AssertionError) as exc:  # AssertionError: we are a daemonic process
            self._failed_starts += 1
            log.warning("files are read in this process, without limits on memory and time: "
                        "the reading process did not start (%s)", exc)
            if process is not None:
                process.close(timeout=0.5)
            return None
        self._child = _Child(process, frozenset(ready.loaders))
        return self._child

    @staticmethod
    def _picklable(loaders: Iterable[Any]) -> tuple[bytes, ...]:
        found: dict[str, bytes] = {}
        for loader in loaders:
            try:
                found[loader_key(loader)] = pickle.dumps(loader)
            except Exception:  # noqa: BLE001 - a closure, a lock, an open model: it reads here
                continue
        return tuple(found.values())

    def _end_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.process.close(timeout=0.5)

    def _read(self, child: _Child, path: Path, loader: Any, key: str, cancel: threading.Event | None,
              progress: PageProgress | None) -> LoadResult:
        from archivist import ChildEnded

        t0 = time.monotonic()
        deadline = t0 + self.limits.time_s
        pages: Pages | None = None  # the last slow page reported
        parts: list[DocumentPart] = []
        try:
            child.process.send(Read(str(path), key))
            while True:
                if cancel is not None and cancel.is_set():
                    self._end_child()
                    raise Stopped()
                left = deadline - time.monotonic()
                if left <= 0:
                    self._end_child()
                    return LoadResult(path, reason=self._too_long(pages), loader=loader.name,
                                      seconds=time.monotonic() - t0, transient=True)
                message = child.process.receive(timeout=min(POLL_S, left))
                if message is None:
                    continue
                if isinstance(message, Pages):
                    pages = message
                    deadline = max(deadline, time.monotonic() + self.limits.page_s)
                    if progress is not None:
                        try:
                            progress(message.done, message.total)
                        except BaseException:
                            self._end_child()  # it is mid-file: its next messages would be this file's
                            raise
                elif isinstance(message, Part):
                    parts.append(message.part)
                elif isinstance(message, Loaded):
                    doc = replace(message.document, parts=tuple(parts))
                    return self.registry.finish(path, loader, doc, time.monotonic() - t0)
                elif isinstance(message, NotRead):
                    return LoadResult(path, reason=message.reason, loader=loader.name,
                                      seconds=time.monotonic() - t0, transient=message.transient)
                elif isinstance(message, NoLoader):
                    return self.registry.load(path, progress=progress)
        except ChildEnded as exc:
            self._end_child()
            return LoadResult(path, reason=self._death(exc), loader=loader.name,
                              seconds=time.monotonic() - t0, transient=True)

    def _too_long(self, pages: Pages | None) -> str:
        if pages is None or pages.done >= pages.total:
            return f"took longer than {self.limits.time_s:g} s to read"
        return (f"took longer than {self.limits.page_s:g} s to read one scanned page by OCR "
                f"(page {pages.done + 1} of the {pages.total} it needed)")

    def _death(self, exc: Any) -> str:
        if exc.over_memory:
            return f"used more than {self.limits.memory_mb:g} MB while reading it: a decompression bomb?"
        code = exc.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if name == "SIGKILL":
                return "the reading process was killed while reading it (SIGKILL: out of memory?)"
            return f"the reading process crashed on it ({name})"
        return f"the reading process ended while reading it (exit code {code})"


# -- the child --------------------------------------------------------------------------


def serve(channel: Any, home: str, safe_mode: bool, memory_mb: float) -> None:
    """The child: collect the home's loaders, adopt the parent's others, cap memory
    (after both: their imports are not reading), then read what is asked."""
    from archivist import collect_loaders, limit_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle: it ends this child
    logging.disable(logging.ERROR)  # the app's process reports its plugins' problems once
    try:
        loaders = {loader_key(loader): loader for loader in collect_loaders(home, safe_mode=safe_mode)}
    finally:
        logging.disable(logging.NOTSET)
    channel.send(Ready(tuple(loaders)))
    adopt = channel.receive()
    if not isinstance(adopt, Adopt):
        return
    for data in adopt.loaders:
        try:
            loader = pickle.loads(data)  # the parent's own objects, over its own pipe
        except Exception:  # noqa: BLE001 - its class is not importable here: the parent reads with it
            continue
        loaders[loader_key(loader)] = loader
    limit_memory(memory_mb)
    channel.send(Ready(tuple(loaders)))
    while isinstance(request := channel.receive(), Read):
        loader = loaders.get(request.loader)
        if loader is None:
            channel.send(NoLoader())
            continue
        t0 = time.monotonic()
        try:
            with reporting_pages(lambda done, total: channel.send(Pages(done, total))):
                doc = loader.load(Path(request.path))
        except UnreadableDocument as exc:
            channel.send(NotRead(str(exc), transient=bool(getattr(exc, "transient", False))))
            continue
        except MemoryError:
            raise  # ends this child with archivist's memory exit status: the parent says why
        except Exception as exc:  # a loader's bug on a strange file: the parent skips the file
            channel.send(NotRead(f"could not be parsed ({describe(exc)})", transient=True))
            continue
        _send_document(channel, doc, time.monotonic() - t0)


def _send_document(channel: Any, doc: Any, seconds: float) -> None:
    try:
        if not isinstance(doc, Document):
            raise TypeError(f"the loader returned {type(doc).__name__}, not a Document")
        for part in doc.parts:
            channel.send(Part(part))
        metadata = {str(k): v if v is None or isinstance(v, (str, int, float, bool)) else str(v)
                    for k, v in (doc.metadata or {}).items()}
        channel.send(Loaded(replace(doc, parts=(), metadata=metadata), seconds))
    except MemoryError:
        raise
    except Exception as exc:  # not picklable: a loader's bug, reported as the file's reason
        channel.send(NotRead(f"could not be parsed ({describe(exc)})", transient=True))
