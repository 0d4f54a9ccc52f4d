"""What the user set on the Settings page, kept in the home folder's settings store.

Stored in the database (``archivist.store.settings``), not in Qt's per-user QSettings,
so everything Archivist keeps stays in the one home folder a user can back up or move.
The assistant reads its system prompt, sources and context budget through
``Application.preference``: the values saved here, else ``config.toml``'s, so ``archivist
ask`` answers as the window was set up. :meth:`Preferences.apply` also lays them over
``Application.config`` for this session. Qt-free, so it is read before any widget exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from archivist.assistant import DEFAULT_CONTEXT_BUDGET, DEFAULT_SOURCES
from archivist.prompt import DEFAULT_SYSTEM_PROMPT
from archivist.types import GenerationOptions

PREFIX = "gui."  # = archivist.application.PREFERENCE_PREFIX: the CLI reads these too
THEMES = ("system", "light", "dark")


@dataclass
class Preferences:
    """The Settings page's values; ``font_size`` 0 means the platform's default."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_budget: int = DEFAULT_CONTEXT_BUDGET
    sources: int = DEFAULT_SOURCES
    temperature: float = 0.0
    max_new_tokens: int = 512
    use_documents: bool = True
    theme: str = "system"
    font_size: int = 0

    @classmethod
    def load(cls, settings: Any, config: dict[str, Any] | None = None) -> Preferences:
        """Stored values, else ``config.toml``'s, else the defaults."""
        config = config or {}
        prefs = cls()
        for f in fields(cls):
            default = getattr(prefs, f.name)
            value = settings.get(PREFIX + f.name, config.get(f.name, default))
            try:
                value = type(default)(value)
            except (TypeError, ValueError):
                value = default
            setattr(prefs, f.name, value)
        if prefs.theme not in THEMES:
            prefs.theme = "system"
        return prefs

    def save(self, settings: Any) -> None:
        for key, value in asdict(self).items():
            settings.set(PREFIX + key, value)

    def apply(self, config: dict[str, Any]) -> None:
        """Lay the prompt settings over the application's config for the next turns."""
        config["system_prompt"] = self.system_prompt
        config["context_budget"] = self.context_budget
        config["sources"] = self.sources

    def options(self) -> GenerationOptions:
        return GenerationOptions(max_new_tokens=self.max_new_tokens, temperature=self.temperature)

    def stream_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Assistant.stream`` besides the question."""
        return {"options": self.options(), "sources": self.sources, "use_documents": self.use_documents}
