"""The remote backend: each server the user added is a model, loaded without a download.

A loaded remote model never sees a template: ``apply_chat_template`` packs the messages
as JSON (the "prompt" the core counts and hands back to ``stream``), and ``stream`` sends
them to the server's ``/chat/completions``, whose own template applies. Tokens are
estimated (about three characters each, an over-count for English, so the packed prompt
fits), since the server's tokenizer is over there.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archivist import ArchivistError, ChatMessage, GenerationOptions, GenerationStats, ModelInfo, ModelLoadError
from archivist_remote import keychain
from archivist_remote.client import Client, RemoteError, Timeouts, Usage
from archivist_remote.servers import DEFAULT_CONTEXT, Server, ServerList, base_url, check_name

BACKEND = "remote"
PROMPT_MARK = "archivist-remote-messages:"
CHARS_PER_TOKEN = 3.0


def _timeouts(settings: dict[str, Any]) -> Timeouts:
    def number(key: str, default: float) -> float:
        value = settings.get(key, default)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 \
            else default

    defaults = Timeouts()
    return Timeouts(connect=number("connect_timeout", defaults.connect), read=number("read_timeout", defaults.read),
                    retries=int(number("retries", defaults.retries)), backoff=number("backoff", defaults.backoff))


def _context_of(described: dict[str, Any]) -> int | None:
    """The context size a server's /models entry states, where it states one (vLLM's
    ``max_model_len``, another Archivist's ``archivist.context_length``, llama.cpp's
    ``meta.n_ctx_train``)."""
    for value in (described.get("max_model_len"), (described.get("archivist") or {}).get("context_length"),
                  described.get("context_length"), (described.get("meta") or {}).get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None


class RemoteModel:
    """A server's model, as an ``archivist.LoadedModel``."""

    def __init__(self, info: ModelInfo, client: Client, model: str,
                 key: Callable[[], str | None] | None = None) -> None:
        self.info = info
        self.provider = BACKEND
        self.client = client
        self.model = model
        self.key = key  # read for each answer: a key changed in the keychain or environment applies

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> str:
        return PROMPT_MARK + json.dumps([m.to_dict() for m in messages], ensure_ascii=False)

    @staticmethod
    def _messages(prompt: str) -> list[dict[str, str]]:
        if prompt.startswith(PROMPT_MARK):
            return json.loads(prompt[len(PROMPT_MARK):])
        return [{"role": "user", "content": prompt}]

    def count_tokens(self, text: str) -> int:
        if text.startswith(PROMPT_MARK):
            messages = self._messages(text)
            return sum(4 + math.ceil(len(m["content"]) / CHARS_PER_TOKEN) for m in messages) + 2
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def stream(self, prompt: str, options: GenerationOptions, stats: GenerationStats | None = None,
               cancel: threading.Event | None = None) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        if self.key is not None:
            self.client.key = self.key()
        messages = self._messages(prompt)
        usage = Usage()
        started = time.perf_counter()
        stats.prompt_tokens = self.count_tokens(prompt)
        stats.finish_reason = "length"
        pieces = 0
        try:
            for piece in self.client.stream_chat(self.model, messages, max_tokens=options.max_new_tokens,
                                                 temperature=options.temperature, top_p=options.top_p,
                                                 usage=usage, cancel=cancel):
                if stats.ttft_ms is None:
                    stats.ttft_ms = (time.perf_counter() - started) * 1000.0
                pieces += 1
                yield piece
            if usage.finish_reason == "cancelled" or (cancel is not None and cancel.is_set()):
                stats.finish_reason = "cancelled"
            else:
                stats.finish_reason = "length" if usage.finish_reason == "length" else "stop"
        finally:
            elapsed = time.perf_counter() - started
            stats.total_ms = elapsed * 1000.0
            stats.prompt_tokens = usage.prompt_tokens or stats.prompt_tokens
            stats.completion_tokens = usage.completion_tokens or pieces
            if stats.completion_tokens and stats.ttft_ms is not None:
                generating = max(elapsed - stats.ttft_ms / 1000.0, 1e-9)
                stats.tokens_per_s = stats.completion_tokens / generating

    def close(self) -> None:
        pass  # nothing held here: the server keeps its model


class RemoteBackend:
    """``archivist.ModelBackend`` + ``ModelSource``, and the core's ``ServerRegistry``."""

    name = BACKEND

    def __init__(self, folder: Path, settings: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.servers = ServerList(self.folder)
        self.timeouts = _timeouts(settings or {})

    # -- ModelBackend / ModelSource --------------------------------------------------------

    def providers(self) -> list[str]:
        return [BACKEND]

    def can_load(self, model: ModelInfo) -> bool:
        return model.backend == BACKEND

    def models(self) -> list[ModelInfo]:
        try:
            servers = self.servers.all()
        except ArchivistError:
            return []  # a damaged list offers nothing; `archivist doctor` says why
        return [self._info(s) for s in servers]

    def load(self, model: ModelInfo, provider: str | None = None) -> RemoteModel:
        server = self.servers.get(str(model.metadata.get("server", model.id)))
        if server is None:
            raise ModelLoadError(f"no server called {model.id!r} is added (see `archivist models servers`)")
        return RemoteModel(self._info(server), self._client(server, key=""), server.model,
                           key=lambda: self._key(server))

    def _info(self, server: Server) -> ModelInfo:
        host = urlsplit(server.url).netloc
        return ModelInfo(
            id=server.name,
            path=f"remote://{server.name}",
            name=f"{server.model} on {host}",
            backend=BACKEND,
            context_length=server.context_length,
            description=f"{server.model} served by {server.url}",
            metadata={"server": server.name, "url": server.url, "model": server.model, "key": server.key,
                      "remote": True},
        )

    def _key(self, server: Server) -> str | None:
        if server.key == "keyring":
            try:
                return keychain.load(self.folder, server.name)
            except keychain.NoKeychain as exc:
                raise ModelLoadError(f"the key of {server.name} is in a keychain that cannot be read now: {exc}") \
                    from None
        if server.key == "env" and server.key_env:
            value = os.environ.get(server.key_env)
            if not value:
                raise ModelLoadError(f"the key of {server.name} is read from ${server.key_env}, which is not set")
            return value
        return None

    def _client(self, server: Server, key: str | None = None) -> Client:
        return Client(server.name, server.url, key if key is not None else self._key(server), self.timeouts)

    # -- ServerRegistry --------------------------------------------------------------------

    def add_server(self, name: str, url: str, model: str | None = None, key: str | None = None,
                   key_env: str | None = None, context_length: int | None = None) -> ModelInfo:
        check_name(name)
        url = base_url(url)
        if key and key_env:
            raise ArchivistError("give the key or the variable that holds it, not both")
        presented = key if key else (os.environ.get(key_env) if key_env else None)
        if key_env and not presented:
            raise ArchivistError(f"${key_env} is not set: set it to the server's key first")
        client = Client(name, url, presented, self.timeouts)
        offered = client.list_models()
        ids = [str(m["id"]) for m in offered]
        if model is None:
            if len(ids) != 1:
                raise ArchivistError(f"the server at {url} has {len(ids)} models ({', '.join(ids[:10]) or 'none'}): "
                                     "name one with --model")
            model = ids[0]
        elif model not in ids:
            raise ArchivistError(f"the server at {url} has no model {model!r}; it has {', '.join(ids[:10]) or 'none'}")
        described = next(m for m in offered if str(m["id"]) == model)
        context = context_length or _context_of(described) or DEFAULT_CONTEXT
        where = "none"
        if key:
            keychain.save(self.folder, name, key)  # refused (NoKeychain) before anything is written
            where = "keyring"
        elif key_env:
            where = "env"
        previous = self.servers.get(name)
        if previous is not None and previous.key == "keyring" and where != "keyring":
            keychain.forget(self.folder, name)
        server = Server(name=name, url=url, model=model, key=where, key_env=key_env, context_length=context,
                        added_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.servers.put(server)
        return self._info(server)

    def remove_server(self, name: str) -> None:
        server = self.servers.remove(name)
        if server.key == "keyring":
            keychain.forget(self.folder, name)

    def check_servers(self) -> list[dict[str, Any]]:
        states = []
        for server in self.servers.all():
            state: dict[str, Any] = {"name": server.name, "url": server.url, "model": server.model,
                                     "reachable": False, "models": [], "error": ""}
            try:
                client = self._client(server)
                client.timeouts = Timeouts(connect=min(self.timeouts.connect, 3.0), read=10.0, retries=1)
                state["models"] = [str(m["id"]) for m in client.list_models(timeout_s=10.0)]
                state["reachable"] = True
                if server.model not in state["models"]:
                    state["error"] = f"it no longer has {server.model}"
            except (RemoteError, ModelLoadError) as exc:
                state["error"] = str(exc)
            states.append(state)
        return states
