"""Model servers the user added: a bigger model on another machine, as a model like any other.

A model backend that talks to servers (the built-in ``remote`` plugin speaks the OpenAI
protocol to vLLM, llama.cpp's server, Ollama, LM Studio or another Archivist) offers each
server the user added as a :class:`~archivist.types.ModelInfo`
(:class:`~archivist.protocols.ModelSource`), and keeps the list itself. To let the front
ends add and remove servers without knowing which plugin keeps them, such a backend also
satisfies :class:`ServerRegistry`, and :class:`ModelServers` (``app.servers``) drives the
first one in hook order, the way :class:`~archivist.library.LibraryService` drives the
first library. ``archivist models add-server`` and the window's Models page render it.

Only the packed prompt leaves the machine: retrieval, citations and the safety filter run
here, around the server's model, exactly as around a local one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from archivist.errors import ArchivistError, PluginFailure
from archivist.types import ModelInfo

if TYPE_CHECKING:
    from archivist.plugins import Contribution, PluginHost

#: The sentence the front ends show beside the servers.
PRIVACY_NOTE = ("Only the packed prompt (your question, the passages found in your documents and the "
                "conversation so far) is sent to a server you add; your files, the index and the search "
                "stay on this computer, and the safety filter screens the question and the answer here.")


@runtime_checkable
class ServerRegistry(Protocol):
    """Optional, beside :class:`~archivist.protocols.ModelBackend` and ``ModelSource``:
    a backend whose models are servers the user adds and removes.

    ``add_server`` checks the server (it lists its models, with the key) and raises
    :class:`archivist.ArchivistError` with a sentence a user can act on when it cannot:
    the server is down, the key is wrong, the model is not there. It keeps ``key`` in the
    operating system's keychain, never in a file. ``check_servers`` asks each server
    which models it has now, for ``archivist doctor``: one dict per server with ``name``,
    ``url``, ``model``, ``reachable`` (bool), ``models`` (ids) and ``error`` ("" or why).
    """

    def add_server(self, name: str, url: str, model: str | None = None, key: str | None = None,
                   key_env: str | None = None, context_length: int | None = None) -> ModelInfo:
        """Add (or replace) the server ``name``; return the model it now offers."""

    def remove_server(self, name: str) -> None:
        """Forget the server ``name`` and its key."""

    def check_servers(self) -> list[dict[str, Any]]:
        """Each server's state now (see the class docstring)."""


class NoServerBackend(ArchivistError):
    """No enabled plugin keeps model servers (the remote plugin is off or not installed)."""


class ModelServers:
    """The servers of the first enabled backend that keeps them; every call is guarded."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def contribution(self) -> Contribution[Any] | None:
        for backend in self.host.model_backends():
            if isinstance(backend.obj, ServerRegistry):
                return backend
        return None

    @property
    def available(self) -> bool:
        return self.contribution() is not None

    def _registry(self) -> Contribution[Any]:
        found = self.contribution()
        if found is None:
            raise NoServerBackend("no plugin that talks to model servers is enabled (the built-in one is "
                                  "`remote`: `archivist plugins enable remote`, then start Archivist again)")
        return found

    def _run(self, method: str, *args: Any) -> Any:
        try:
            return self.host.run(self._registry(), method, *args)
        except PluginFailure as exc:
            raise ArchivistError(str(exc)) from exc

    def add(self, name: str, url: str, model: str | None = None, key: str | None = None,
            key_env: str | None = None, context_length: int | None = None) -> ModelInfo:
        info = self._run("add_server", name, url, model, key, key_env, context_length)
        if not isinstance(info, ModelInfo):
            raise ArchivistError(f"the server backend answered add_server with {info!r:.60}, not a ModelInfo")
        return info

    def remove(self, name: str) -> None:
        self._run("remove_server", name)

    def models(self) -> list[ModelInfo]:
        """The servers' models, as the backend offers them (no network)."""
        found = self.contribution()
        if found is None:
            return []
        try:
            models = self.host.run(found, "models")
        except PluginFailure:
            return []
        return [m for m in models if isinstance(m, ModelInfo)] if isinstance(models, list) else []

    def check(self) -> list[dict[str, Any]]:
        """Each server: reachable or not, and the models it has (asks every server)."""
        found = self.contribution()
        if found is None:
            return []
        try:
            states = self.host.run(found, "check_servers")
        except PluginFailure as exc:
            return [{"name": "?", "url": "", "model": "", "reachable": False, "models": [], "error": str(exc)}]
        return [s for s in states if isinstance(s, dict)] if isinstance(states, list) else []
