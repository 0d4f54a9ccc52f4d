"""A third-party plugin that provides its own library and retriever, for tests.

It needs nothing of the built-in FAISS plugin: no loaders, no encoder, no database. It
reads ``.txt`` files itself (one passage per paragraph), keeps what it holds in memory
while it works and writes it to one JSON file under its data folder after each change,
so that the window's library process, the window itself and separate ``archivist`` runs
see the same library. It searches by shared words. It does not watch folders (watching
is optional), so the front ends must cope without.

:func:`install` makes it a real distribution (a dist-info with an ``archivist`` entry
point) in a folder for ``sys.path`` / ``PYTHONPATH``, as a ``pip install`` would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archivist import (
    ArchivistError,
    LibrarySource,
    Locator,
    Passage,
    SkippedFile,
    SyncProgress,
    SyncReport,
    hookimpl,
)

NAME = "memory"
DISTRIBUTION = "archivist-memory-library"
_WORD = re.compile(r"\w+")


class MemoryLibrary:
    """``archivist.Library`` over ``<data>/library.json``: {source: {"added_at", "files":
    {path: {"size", "mtime", "passages": [[start, end, text], ...]} or {"skipped": reason}}}}."""

    name = NAME

    def __init__(self, folder: Path) -> None:
        self.file = Path(folder) / "library.json"
        self.lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.file.read_text("utf-8")))
        except FileNotFoundError:
            return {}

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.file.with_name(self.file.name + ".tmp")
        tmp.write_text(json.dumps(data), "utf-8")
        os.replace(tmp, self.file)

    def sources(self) -> list[LibrarySource]:
        out = []
        for key, source in sorted(self._load().items()):
            files = source["files"].values()
            out.append(LibrarySource(key, source["added_at"], sum("passages" in f for f in files),
                                     sum("skipped" in f for f in files),
                                     sum(len(f.get("passages", ())) for f in files)))
        return out

    def add_source(self, path: Path) -> str:
        key = str(Path(path).expanduser().resolve())
        if not Path(key).exists():
            raise ArchivistError(f"{key} does not exist")
        with self.lock:
            data = self._load()
            data.setdefault(key, {"added_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": {}})
            self._save(data)
        return key

    def remove_source(self, path: str) -> int:
        with self.lock:
            data = self._load()
            if path not in data:
                raise ArchivistError(f"{path} is not a source")
            removed = len(data.pop(path)["files"])
            self._save(data)
        return removed

    def sync(self, roots: Sequence[str] | None = None, progress: Callable[[SyncProgress], None] | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        started = time.monotonic()
        report = SyncReport()
        with self.lock:
            data = self._load()
            for root in (list(roots) if roots is not None else sorted(data)):
                if root not in data:
                    raise ArchivistError(f"{root} is not a source")
                self._sync_root(root, data[root]["files"], report, progress, cancel)
                self._save(data)
                if report.cancelled:
                    break
        report.seconds = time.monotonic() - started
        return report

    def _sync_root(self, root: str, known: dict[str, Any], report: SyncReport,
                   progress: Callable[[SyncProgress], None] | None, cancel: threading.Event | None) -> None:
        top = Path(root)
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*")
                                                   if p.is_file() and not p.name.startswith("."))
        files = [str(p.resolve()) for p in paths]
        for gone in sorted(set(known) - set(files)):
            del known[gone]
            report.removed.append(gone)
        for n, path in enumerate(files):
            if progress:
                progress(SyncProgress(root, n, len(files), path))
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                return
            st = os.stat(path)
            before = known.get(path)
            if before is not None and (before.get("size"), before.get("mtime")) == (st.st_size, st.st_mtime):
                report.unchanged += 1
                if "skipped" in before:
                    report.skipped.append(SkippedFile(path, before["skipped"]))
                continue
            entry = read(Path(path))
            entry.update(size=st.st_size, mtime=st.st_mtime)
            known[path] = entry
            if "skipped" in entry:
                report.skipped.append(SkippedFile(path, entry["skipped"]))
            else:
                report.indexed.append(path)
                report.passages += len(entry["passages"])
                report.pages += 1
        if progress:
            progress(SyncProgress(root, len(files), len(files)))

    def skipped(self) -> list[SkippedFile]:
        return sorted((SkippedFile(path, f["skipped"]) for source in self._load().values()
                       for path, f in source["files"].items() if "skipped" in f), key=lambda s: s.path)

    def count(self) -> int:
        return sum(len(f.get("passages", ())) for source in self._load().values() for f in source["files"].values())

    def passages(self) -> list[tuple[str, list[Any]]]:
        return [(path, p) for source in self._load().values() for path, f in source["files"].items()
                for p in f.get("passages", ())]


def read(path: Path) -> dict[str, Any]:
    """A text file's paragraphs with their offsets, or why it was skipped."""
    if path.suffix != ".txt":
        return {"skipped": f"unsupported file type '{path.suffix or path.name}'"}
    text = path.read_text("utf-8", errors="replace")
    if not text.strip():
        return {"skipped": "empty file (0 bytes)" if not text else "no text found"}
    passages = [[m.start(), m.end(), m.group().strip()] for m in re.finditer(r"\S(?:.|\n(?!\s*\n))*", text)]
    return {"passages": passages}


class MemoryRetriever:
    """``archivist.Retriever`` (and ``Countable``) over the same file: shared words, best first."""

    name = NAME

    def __init__(self, library: MemoryLibrary) -> None:
        self.library = library

    def count(self) -> int:
        return self.library.count()

    def search(self, query: str, k: int = 5) -> list[Passage]:
        words = set(_WORD.findall(query.lower()))
        scored = []
        for path, (start, end, text) in self.library.passages():
            shared = len(words & set(_WORD.findall(text.lower())))
            if shared:
                scored.append((shared / len(words), path, start, end, text))
        scored.sort(key=lambda hit: (-hit[0], hit[1], hit[2]))
        return [Passage(text, path, Locator(start=start, end=end), round(score, 4))
                for score, path, start, end, text in scored[:k]]


@hookimpl
def register_libraries(register: Callable[[Any], None], context: Any) -> None:
    register(MemoryLibrary(context.data_dir(NAME)))


@hookimpl
def register_retrievers(register: Callable[[Any], None], context: Any) -> None:
    register(MemoryRetriever(MemoryLibrary(context.data_dir(NAME))))


def install(site: Path) -> Path:
    """This module as the installed distribution ``archivist-memory-library`` under ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    module = "archivist_memory_library"
    shutil.copy(Path(__file__), site / f"{module}.py")
    info = site / "archivist_memory_library-1.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(f"[archivist]\n{NAME} = {module}\n")
    return site
