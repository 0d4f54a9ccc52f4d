"""One running Archivist: its home folder, database, plugins and the model in use.

The CLI, the GUI and Python callers each make one ``Application`` and ask it for an
:class:`~archivist.assistant.Assistant`, so every front end sees the same state. The
database opens on first use and the model loads on first question, which keeps
``archivist --help`` and plugin listing fast.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archivist.config import (
    Paths,
    load_config,
    peek_setting,
    read_disabled_plugins,
    resolve_home,
    write_disabled_plugins,
)
from archivist.context import PluginContext
from archivist.errors import ModelLoadError, ModelNotFound, PluginFailure
from archivist.model_service import MODEL_SETTING, PROVIDER_SETTING
from archivist.plugins import CORE_PLUGINS, PluginHost
from archivist.types import ChatMessage, ModelInfo

if TYPE_CHECKING:
    from archivist.assistant import Assistant
    from archivist.library import LibraryService
    from archivist.model_servers import ModelServers
    from archivist.model_service import ModelService
    from archivist.protocols import DocumentLoader, LoadedModel
    from archivist.store.conversations import Conversations
    from archivist.store.database import Database
    from archivist.whole_files import ReadCache

log = logging.getLogger(__name__)

PREFERENCE_PREFIX = "gui."  # where the Settings page keeps its values (archivist.gui.preferences)


class Application:
    """Wires the home folder, the store, the plugin host and the model together."""

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        safe_mode: bool = False,
        allowed_plugins: set[str] | None = None,
        load_entry_points: bool = True,
        extra_plugins: list[tuple[str, object]] | None = None,
        host: PluginHost | None = None,
        isolate_model: bool = False,
    ) -> None:
        self.paths = Paths(resolve_home(home)).ensure()
        # A damaged config.toml gives the defaults; the front ends show these lines.
        self.config: dict[str, Any]
        self.config, self.warnings = load_config(self.paths)
        self.safe_mode = safe_mode
        # PluginContext.ask_model answers from the model this application loaded.
        if host is None:
            timeouts = self.config.get("plugins", {}).get("timeouts")
            host = PluginHost(
                PluginContext(home=self.paths.home, settings=self.config, safe_mode=safe_mode,
                              answer_aside=self.ask_model),
                safe_mode=safe_mode,
                allowed=allowed_plugins,
                disabled=read_disabled_plugins(self.paths),
                load_entry_points=load_entry_points,
                extra_plugins=extra_plugins or (),
                timeouts=timeouts if isinstance(timeouts, dict) else None,
            )
        else:
            host.use_context(dataclasses.replace(host.context, answer_aside=self.ask_model))
        self.host = host
        # Run the built-in backend's model in a child process (the GUI does: onnxruntime-genai
        # holds the GIL while it generates, which would freeze the window).
        self.isolate_model = isolate_model
        self._model: LoadedModel | None = None
        self._model_lock = threading.Lock()
        # What the last load fell back from, in a sentence ("" when it did not).
        self.load_notice = ""
        self._loaded_for: tuple[str, str | None] | None = None

    @cached_property
    def database(self) -> Database:
        from archivist.store.database import open_database

        return open_database(self.paths.database)

    @cached_property
    def pinned_reads(self) -> ReadCache:
        """Pinned files already read, kept while unchanged, for every turn of this
        application (each turn gets an :meth:`assistant` of its own)."""
        from archivist.whole_files import ReadCache

        return ReadCache()

    @cached_property
    def library(self) -> LibraryService:
        """The user's library (folders, syncing, what was skipped), whichever plugin provides it."""
        from archivist.library import LibraryService

        return LibraryService(self.host)

    @cached_property
    def models(self) -> ModelService:
        """This home's models: the state of this machine and the actions on them."""
        from archivist.model_service import ModelService

        return ModelService(self.paths.models, self)

    @cached_property
    def servers(self) -> ModelServers:
        """Model servers the user added (kept by whichever backend keeps them: the remote plugin's)."""
        from archivist.model_servers import ModelServers

        return ModelServers(self.host)

    @property
    def loaded_model(self) -> LoadedModel | None:
        """The model loaded now (None before the first question and after ``close``)."""
        return self._model

    def settings(self) -> Any:
        from archivist.store.settings import Settings

        return Settings(self.database)

    def setting(self, key: str, default: Any = None) -> Any:
        """A stored setting, without opening the database when it is not open yet."""
        if "database" in self.__dict__:
            return self.settings().get(key, default)
        return peek_setting(self.paths, key, default)

    def preference(self, key: str, default: Any = None) -> Any:
        """A prompt setting (``system_prompt``, ``sources``, ``context_budget``): the value
        saved on the GUI's Settings page, else ``config.toml``'s, else ``default``; so the
        command line answers the way the window was set up."""
        return self.setting(PREFERENCE_PREFIX + key, self.config.get(key, default))

    def model_info(self, model: str | None = None) -> ModelInfo:
        """The model a question would use: ``model``, else the chosen one.

        Installed folders come first, as they always have; a name no folder answers to
        may still be a model an enabled backend offers (:class:`~archivist.protocols.ModelSource`:
        a remote server's, a test's scripted one). Otherwise the folder lookup's own
        error stands, since it says what to install.
        """
        from archivist.engine.installed import find_model

        if model is None:
            model = self.setting(MODEL_SETTING, None)
        try:
            return find_model(self.paths.models, model)
        except ModelNotFound:
            offered = next((m for m in self.offered_models() if model in (m.id, m.path)), None) if model else None
            if offered is None:
                raise
            return offered

    def offered_models(self) -> list[ModelInfo]:
        """Models the enabled backends offer beyond the installed folders.

        Each backend is asked under the plugin host's guard, so one that raises (or
        answers with something that is not a list of ModelInfo) is disabled and the
        others' models still count.
        """
        from archivist.protocols import ModelSource

        offered: list[ModelInfo] = []
        for backend in self.host.model_backends():
            if not isinstance(backend.obj, ModelSource):
                continue
            try:
                models = self.host.run(backend, "models")
            except PluginFailure as exc:
                log.warning("%s", exc)
                continue
            if not isinstance(models, (list, tuple)) or not all(isinstance(m, ModelInfo) for m in models):
                where = f"{type(backend.obj).__name__}.models"
                self.host.disable(backend.plugin, where, TypeError(f"expected a list of ModelInfo, got {models!r:.80}"))
                continue
            offered.extend(models)
        return offered

    def load_model(self, model: str | None = None, provider: str | None = None) -> LoadedModel:
        """Load (once) and return the model, trying each backend that can read it."""
        with self._model_lock:
            info = self.model_info(model)
            current = self._model
            if current is not None and current.info.path == info.path and (
                provider is None or current.provider == provider
            ):
                return current
            if current is not None and self._loaded_for == (info.path, provider):
                return current  # the same request fell back last time: keep what it got
            if current is not None:
                current.close()
                self._model = None
            requested = (info.path, provider)
            if provider is None:
                provider = self.setting(PROVIDER_SETTING, None)
            from archivist.engine.fallback import fallback_plan, load_with_fallback

            plan = fallback_plan(info, provider, self.paths.models)
            outcome = load_with_fallback(plan, self._load_on_backends)
            self.load_notice = outcome.message
            if outcome.message:
                log.warning("%s", outcome.message)
            self._model = outcome.model
            self._loaded_for = requested
            return self._model

    def _load_on_backends(self, info: ModelInfo, provider: str | None) -> LoadedModel:
        """Load ``info`` on ``provider`` with the first backend that can read it.

        The backend the model names (``info.backend``) is asked first: the backend that
        offered a model knows it best, and another backend's ``can_load`` could claim it.
        """
        failures = []
        backends = sorted(self.host.model_backends(), key=lambda b: b.obj.name != info.backend)
        for backend in backends:
            try:
                if not self.host.run(backend, "can_load", info):
                    continue
                if self.isolate_model and backend.plugin in CORE_PLUGINS:
                    from archivist.engine.process import ProcessModel

                    return ProcessModel(Path(info.path), provider)
                return self.host.run(backend, "load", info, provider)
            except (ModelLoadError, PluginFailure) as exc:
                failures.append(f"{backend.plugin}: {exc}")
        if failures:
            raise ModelLoadError("; ".join(failures))
        raise ModelNotFound(f"no model backend can load {info.path}")

    def set_plugin_enabled(self, name: str, enabled: bool) -> None:
        """Remember the user's choice for the next start (it needs a restart to apply)."""
        disabled = read_disabled_plugins(self.paths)
        disabled.discard(name) if enabled else disabled.add(name)
        write_disabled_plugins(self.paths, disabled)

    def assistant(self) -> Assistant:
        """The assistant over this application's plugins, model, store and preferences."""
        from archivist.assistant import Assistant

        def conversations() -> Conversations:
            from archivist.store.conversations import Conversations

            return Conversations(self.database)

        return Assistant(self.host, load_model=self.load_model, conversations=conversations,
                         preference=self.preference, pinned_reads=self.pinned_reads)

    def ask_model(
        self, messages: list[ChatMessage], max_new_tokens: int = 8, timeout_s: float = 2.0, load: bool = False
    ) -> str | None:
        """The loaded model's short greedy answer aside (see :meth:`PluginContext.ask_model`).

        Never raises: a plugin asking is screening something, and a judge that cannot
        answer must leave the screen to its other layers, not fail it.
        """
        from archivist.protocols import AsideModel

        model = self._model
        try:
            if model is None and load:
                model = self.load_model()
            if model is None:
                return None
            if not isinstance(model, AsideModel):
                log.info("model %s cannot answer aside; a plugin's question went unanswered", model.info.id)
                return None
            return model.answer_aside(messages, max_new_tokens, timeout_s)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("the model gave a plugin no answer: %s", exc)
            return None

    def close(self) -> None:
        self.host.close()  # contributions holding files or memory (archivist.Closable)
        if self._model is not None:
            self._model.close()
            self._model = None
        if "database" in self.__dict__:
            self.database.close()


def collect_loaders(home: str | Path, *, safe_mode: bool = False) -> list[DocumentLoader]:
    """The document loaders the enabled plugins of ``home`` register, collected by a plugin
    host made here as :class:`Application` makes it (the home's disabled plugins, safe mode,
    ``ARCHIVIST_PLUGINS``).

    For a plugin that reads files in a child process of its own (the FAISS library does,
    under per-file limits of memory and time): the child has no host, so it makes one
    and gets the loaders the app's process got, from the same installed plugins.
    """
    return [contribution.obj for contribution in Application(home, safe_mode=safe_mode).host.loaders()]
