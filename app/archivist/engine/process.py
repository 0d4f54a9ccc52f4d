"""The model in a child process, so generating never freezes the caller's other threads.

onnxruntime-genai holds Python's GIL for the whole of a prompt's prefill and for each
decoded token (measured: a 401-token prompt stopped another thread for 5.4 s). In the
desktop window that is a frozen UI, so the GUI runs the model here: a spawned process
that owns the model and streams text back over a pipe. Waiting on a pipe releases the
GIL, so the UI thread stays free. A crash in native code takes down the child, not the
app, and is reported as a load or generation error.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from archivist.errors import ArchivistError, ModelLoadError
from archivist.types import ChatMessage, GenerationOptions, GenerationStats, ModelInfo

# Seconds to wait for the child to load the model before giving up.
LOAD_TIMEOUT_S = 300.0


class ProcessModel:
    """A :class:`~archivist.protocols.LoadedModel` whose work happens in a child process."""

    def __init__(self, folder: Path, provider: str | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe()
        self._cancel = ctx.Event()
        self._lock = threading.Lock()
        self._process = ctx.Process(
            target=_serve,
            args=(child_end, str(folder), provider, self._cancel),
            name="archivist-model",
            daemon=True,
        )
        self._process.start()
        child_end.close()
        if not self._conn.poll(LOAD_TIMEOUT_S):
            self._process.kill()
            raise ModelLoadError(f"the model process did not load {folder} within {LOAD_TIMEOUT_S:g} s")
        reply = self._receive()
        if reply[0] == "error":
            self._process.join(5)
            raise ModelLoadError(reply[1])
        _, info, provider_used = reply
        self.info = ModelInfo(**info)
        self.provider = provider_used

    def _receive(self) -> tuple[Any, ...]:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._process.exitcode
            raise ModelLoadError(f"the model process ended unexpectedly (exit code {code})") from exc

    def _call(self, *request: Any) -> Any:
        with self._lock:
            self._conn.send(request)
            reply = self._receive()
        if reply[0] == "error":
            raise ArchivistError(reply[1])
        return reply[1]

    def count_tokens(self, text: str) -> int:
        return int(self._call("count", text))

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> str:
        return str(self._call("template", [m.to_dict() for m in messages]))

    def stream(
        self,
        prompt: str,
        options: GenerationOptions,
        stats: GenerationStats | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        with self._lock:
            self._cancel.clear()
            self._conn.send(("generate", prompt, dataclasses.asdict(options)))
            finished = False
            try:
                while True:
                    # Poll in short steps so a cancel from the caller reaches the child
                    # even while no token arrives (during a long prefill).
                    while not self._conn.poll(0.05):
                        if cancel is not None and cancel.is_set():
                            self._cancel.set()
                    kind, payload = self._receive()
                    if kind == "text":
                        if cancel is not None and cancel.is_set():
                            self._cancel.set()
                        yield payload
                    elif kind == "done":
                        _fill(stats, payload)
                        finished = True
                        return
                    elif kind == "error":
                        finished = True
                        raise ArchivistError(payload)
            finally:
                if not finished:
                    # The caller stopped reading: stop the child and drain to its "done".
                    self._cancel.set()
                    while True:
                        kind, payload = self._receive()
                        if kind in ("done", "error"):
                            if kind == "done":
                                _fill(stats, payload)
                            break

    def close(self) -> None:
        if self._process.is_alive():
            try:
                with self._lock:
                    self._conn.send(("close",))
            except OSError:
                pass
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
        self._conn.close()


def _fill(stats: GenerationStats, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(stats, key, value)


def _serve(conn: Connection, folder: str, provider: str | None, cancel: Any) -> None:
    """The child's loop: load once, then answer requests until told to close."""
    import archivist  # noqa: F401  (switches telemetry off before onnxruntime loads)
    from archivist.engine.runtime import load_model

    try:
        model = load_model(Path(folder), provider)
    except Exception as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", model.info.to_dict(), model.provider))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        kind = request[0]
        try:
            if kind == "close":
                model.close()
                return
            if kind == "count":
                conn.send(("ok", model.count_tokens(request[1])))
            elif kind == "template":
                messages = [ChatMessage(m["role"], m["content"]) for m in request[1]]
                conn.send(("ok", model.apply_chat_template(messages)))
            elif kind == "generate":
                stats = GenerationStats()
                options = GenerationOptions(**request[2])
                for piece in model.stream(request[1], options, stats, cancel):
                    conn.send(("text", piece))
                conn.send(("done", stats.to_dict()))
        except Exception as exc:  # reported to the caller, the child lives on
            conn.send(("error", str(exc)))
