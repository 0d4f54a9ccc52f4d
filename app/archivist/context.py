"""What a plugin is handed when it registers: :class:`PluginContext`.

Beside the plain data types (:mod:`archivist.types`) because it is more than data: it
carries two callables the core injects (the loaders the host collected, the model's
answers aside), typed by the Protocols in :mod:`archivist.protocols`. Kept in a module of
its own so that neither of those two imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archivist.protocols import DocumentLoader
from archivist.types import ChatMessage


@dataclass(frozen=True)
class PluginContext:
    """What a plugin may know about the running app when it registers contributions.

    ``home`` is Archivist's data folder; a plugin keeps its own files under
    :meth:`data_dir`, never elsewhere, so removing a user's data removes them too.

    The core fills the two callables, a plugin never needs to: the plugin host sets
    ``find_loaders`` (what :meth:`loaders` returns) when it is made, and the application
    sets ``answer_aside`` (what :meth:`ask_model` asks: its own ``ask_model``). A context
    made without them, as a plugin's test may make one, finds no loaders and no model.
    """

    home: Path
    settings: dict[str, Any] = field(default_factory=dict)
    safe_mode: bool = False
    find_loaders: Callable[[], list[DocumentLoader]] | None = field(default=None, repr=False, compare=False)
    answer_aside: Callable[[list[ChatMessage], int, float, bool], str | None] | None = field(
        default=None, repr=False, compare=False
    )

    def data_dir(self, plugin: str) -> Path:
        path = self.home / "plugins" / plugin
        path.mkdir(parents=True, exist_ok=True)
        return path

    def loaders(self) -> list[DocumentLoader]:
        """Every document loader any enabled plugin registered (for indexers).

        Call it when indexing, not while registering: it asks the host, which collects
        loaders from all plugins the first time.
        """
        return list(self.find_loaders()) if self.find_loaders is not None else []

    def ask_model(
        self,
        messages: list[ChatMessage],
        *,
        max_new_tokens: int = 8,
        timeout_s: float = 2.0,
        load: bool = False,
    ) -> str | None:
        """The chat model's short greedy answer to ``messages``, or None.

        For plugins that want the model's own judgement (the safety filter's optional
        judge). It may be called while an answer is streaming, from a screening hook:
        the model answers aside, between two of the answer's tokens. None when no model
        is loaded (unless ``load``: loading takes seconds to minutes, so a screen must
        not do it), when the model's backend cannot answer aside, or when the answer
        fails or takes longer than ``timeout_s``; the reason is logged.
        """
        if self.answer_aside is None:
            return None
        return self.answer_aside(list(messages), max_new_tokens, timeout_s, load)
