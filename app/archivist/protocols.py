"""What a contribution must look like to be registered by a plugin.

Each hook in :mod:`archivist.hookspecs` hands a plugin a ``register`` callback; the
objects it registers satisfy one of these Protocols. They are structural, so a plugin
needs no base class from us, only the attributes and methods below.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from archivist.types import (
    ChatMessage,
    Document,
    GenerationOptions,
    GenerationStats,
    LibrarySource,
    ModelInfo,
    Passage,
    SkippedFile,
    Stage,
    SyncProgress,
    SyncReport,
    Verdict,
)


@runtime_checkable
class LoadedModel(Protocol):
    """A model in memory, ready to answer. Made by :meth:`ModelBackend.load`."""

    info: ModelInfo
    provider: str

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (for context budgets)."""

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt the model expects for these messages, ending where the answer starts."""

    def stream(
        self,
        prompt: str,
        options: GenerationOptions,
        stats: GenerationStats | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is decoded; stop early when ``cancel`` is set.

        Any iterator will do, but return a generator (write it with ``yield``), as the
        built-in models do: when Archivist stops reading early (a sentence the safety
        filter blocked, a caller that stopped), it closes a generator, so its ``finally``
        runs and generation ends at once; a plain iterator is merely no longer read."""

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""


@runtime_checkable
class AsideModel(Protocol):
    """A loaded model that can also give a short answer while a stream is suspended.

    Optional: :meth:`archivist.PluginContext.ask_model` uses it (a safety judge
    asks between two tokens of an answer, from another thread, while the answer's
    stream waits for that screen); models without it are not asked.
    """

    def answer_aside(self, messages: Sequence[ChatMessage], max_new_tokens: int = 8, timeout_s: float = 3.0) -> str:
        """The greedy answer to ``messages`` (in the model's own chat template), not
        waiting for a running stream; raise past ``timeout_s``."""


@runtime_checkable
class ModelBackend(Protocol):
    """Something that can run models: onnxruntime-genai is the built-in one."""

    name: str

    def providers(self) -> list[str]:
        """Execution providers this backend can use on this machine, best first."""

    def can_load(self, model: ModelInfo) -> bool:
        """Whether ``model`` is in a format this backend understands."""

    def load(self, model: ModelInfo, provider: str | None = None) -> LoadedModel:
        """Load ``model`` on ``provider`` (None: the backend's best available)."""


@runtime_checkable
class ModelSource(Protocol):
    """A backend that offers models that are not folders under ``<home>/models``.

    Optional, beside :class:`ModelBackend`: a remote server's models, a test's scripted
    one. Archivist looks a chosen model up among the installed folders first, then
    among what enabled backends offer here, and loads an offered model with the backend
    whose ``name`` is the model's :attr:`~archivist.types.ModelInfo.backend`.
    """

    def models(self) -> list[ModelInfo]:
        """The models this backend can load without an installed folder; may be empty."""


@runtime_checkable
class Retriever(Protocol):
    """Finds passages of the user's documents relevant to a query."""

    name: str

    def search(self, query: str, k: int = 5) -> list[Passage]:
        """The ``k`` best passages, best first, each with a score."""


@runtime_checkable
class Library(Protocol):
    """The user's documents as a collection they add folders to and keep up to date.

    What ``archivist index``, ``archivist sources`` and the window's Library page drive,
    through the core's library service (:mod:`archivist.library`); the built-in FAISS
    plugin provides one, and a plugin may provide another (a shared collection, its own
    index). Searching stays the :class:`Retriever`'s job: a plugin usually registers both
    over the same storage. Every method may be called from a worker thread or a child
    process, one call at a time.
    """

    name: str

    def sources(self) -> list[LibrarySource]:
        """The folders and files added, with what each holds, ``missing`` set for one
        gone from the disk. Cheap enough to call at start-up: do not load an encoder or a
        big index for it."""

    def add_source(self, path: Path) -> str:
        """Add ``path`` (a folder or a file) without indexing it yet; return its key (the
        absolute path). Adding it twice is not an error. Raise
        :class:`archivist.ArchivistError` when it cannot be added (it does not exist)."""

    def remove_source(self, path: str) -> int:
        """Forget the source ``path`` and everything indexed from it; return the files
        removed. Raise :class:`archivist.ArchivistError` when it is not a source."""

    def sync(
        self,
        roots: Sequence[str] | None = None,
        progress: Callable[[SyncProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        """Bring ``roots`` (source keys; None: every source) up to date: index new and
        changed files, drop deleted ones. Call ``progress`` before each file and, in a
        big file, between batches. When ``cancel`` is set, stop before the next file or
        batch, leave the file being read as it was, and return a report with
        ``cancelled=True``. A file that cannot be read is reported in
        ``SyncReport.skipped`` with its reason, never raised."""

    def skipped(self) -> list[SkippedFile]:
        """Every file of every source left out at its last sync, with the reason."""

    def count(self) -> int:
        """Passages searchable now (0: nothing indexed yet)."""


@runtime_checkable
class Watching(Protocol):
    """A running watch over a library's sources (see :class:`WatchesSources`)."""

    roots: list[str]

    def stop(self) -> None:
        """Stop watching; return once no more ``on_change`` calls will come."""


@runtime_checkable
class WatchesSources(Protocol):
    """Optional, beside :class:`Library`: keeps sources up to date as files change."""

    def watch(self, roots: Sequence[str], on_change: Callable[[SyncReport], None]) -> Watching:
        """Watch ``roots`` (source keys) and sync a changed file soon after it changes,
        calling ``on_change`` with each sync's report (from the watcher's own thread)."""


@runtime_checkable
class Countable(Protocol):
    """Optional, beside :class:`Retriever`: how many passages it can search.

    0 tells the assistant there are no documents yet, so it answers from the model alone
    rather than saying it found nothing relevant."""

    def count(self) -> int:
        """Passages searchable now."""


@runtime_checkable
class SharedCollection(Protocol):
    """Optional, beside :class:`Retriever`: the retriever searches a collection the user
    chooses by name (a team's documents on a server, say).

    The user picks per conversation which collections answer (``archivist ask
    --collection NAME``, the chat page's "Answer from" menu): their own library, under
    the reserved name ``library``, which every retriever without this attribute searches,
    and each collection named here. Retrievers with the same ``collection`` are chosen
    together. New after API 1.1 (docs/changelog.md, Unreleased)."""

    collection: str


@runtime_checkable
class Writable(Protocol):
    """Optional, beside :class:`Library`: whether this user may change it.

    A library that some users may only read (a shared collection on a server whose
    permissions say so) tells the core here; the front ends then offer no adding,
    indexing or removing, and say why in the line this returns. A library without it is
    writable. New after API 1.1 (docs/changelog.md, Unreleased)."""

    def read_only(self) -> str:
        """"" when this user may add, index and remove sources; otherwise why not, in
        one line for people ("shared collection docs: read-only for ann"). Must not
        change anything."""


@runtime_checkable
class Repairable(Protocol):
    """Optional, beside any contribution that keeps files: finds damage and repairs it.

    ``archivist doctor`` calls :meth:`check` and lists what it found; ``archivist doctor
    --repair`` calls :meth:`repair`. A truncated database, a file overwritten in the middle,
    an index that no longer matches its records: each is one line saying what is wrong
    and what repairing it will do.
    """

    def check(self) -> list[str]:
        """The problems found, one line each (what is wrong, what ``--repair`` would do);
        an empty list when all is sound. Must not change anything."""

    def repair(self) -> list[str]:
        """Repair what :meth:`check` finds and say what was done, one line each. Never
        delete what the user cannot get back (their documents, conversations) without
        saying so in these lines; prefer moving damaged files aside to deleting them."""


@runtime_checkable
class Closable(Protocol):
    """Optional, beside any contribution holding files or memory: free them now.

    Archivist calls it when the application closes. (A retriever whose files another
    process may change, as the window's indexing process does, notices that itself before
    each search: the FAISS plugin keeps a generation number in its database for this.)"""

    def close(self) -> None:
        """Release files and memory; the object may be used again afterwards."""


@runtime_checkable
class DocumentLoader(Protocol):
    """Turns files of some formats into text with locators for citations."""

    name: str
    extensions: tuple[str, ...]

    def load(self, path: Path) -> Document:
        """Read ``path``; raise :class:`archivist.errors.UnreadableDocument` with a reason."""


@runtime_checkable
class SafetyFilter(Protocol):
    """Screens text at one of the three stages of a chat turn."""

    name: str

    def screen(self, text: str, stage: Stage) -> Verdict:
        """Decide what to do with ``text`` seen at ``stage``.

        A filter may also take a ``context`` keyword, ``screen(self, text, stage,
        context="")`` (new after API 1.1: docs/changelog.md, Unreleased): at the output
        stage it then gets the answer's sentence before ``text``, to judge ``text`` as a
        reader does. Verdict spans stay offsets
        into ``text``. Filters without the keyword are called as before.
        """


@runtime_checkable
class Panel(Protocol):
    """A page a plugin adds to the desktop window (built only when the window opens)."""

    name: str
    title: str

    def create_widget(self, parent: object) -> object:
        """Build and return the page's QWidget, parented to ``parent``."""
