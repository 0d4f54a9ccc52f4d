"""What a contribution must look like to be registered by a plugin.

Each hook in :mod:`archivist.hookspecs` hands a plugin a ``register`` callback; the
objects it registers satisfy one of these Protocols. They are structural, so a plugin
needs no base class from us, only the attributes and methods below.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from archivist.types import (
    ChatMessage,
    Document,
    GenerationOptions,
    GenerationStats,
    ModelInfo,
    Passage,
    Stage,
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
        """Yield the answer's text as it is decoded; stop early when ``cancel`` is set."""

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""


@runtime_checkable
class AsideModel(Protocol):
    """A loaded model that can also give a short answer while a stream is suspended.

    Optional: :meth:`archivist.types.PluginContext.ask_model` uses it (a safety judge
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
        """Decide what to do with ``text`` seen at ``stage``."""


@runtime_checkable
class Panel(Protocol):
    """A page a plugin adds to the desktop window (built only when the window opens)."""

    name: str
    title: str

    def create_widget(self, parent: object) -> object:
        """Build and return the page's QWidget, parented to ``parent``."""
