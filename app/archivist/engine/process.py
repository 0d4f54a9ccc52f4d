"""The model in a child process, so generating never freezes the caller's other threads.

onnxruntime-genai holds Python's GIL for the whole of a prompt's prefill and for each
decoded token (measured: a 401-token prompt stopped another thread for 5.4 s). In the
desktop window that is a frozen UI, so the GUI runs the model here: a spawned process
that owns the model and streams text back over a pipe. Waiting on a pipe releases the
GIL, so the UI thread stays free. A crash in native code takes down the child, not the
app, and is reported as a load or generation error.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from archivist.errors import ArchivistError, ModelLoadError
from archivist.types import ChatMessage, GenerationOptions, GenerationStats, ModelInfo

# Seconds to wait for the child to load the model before giving up.
LOAD_TIMEOUT_S = 300.0

# Held while a child is being started: Process.start() hands the spawned child its
# bootstrap data over a pipe, and a parent that exits in the middle of that (the window
# closed while the model was still starting, as a 300 ms screenshot run does) leaves the
# child dying with an EOFError traceback. At exit we wait for a start in progress.
_STARTING = threading.Lock()


@atexit.register
def _let_a_start_finish() -> None:
    if _STARTING.acquire(timeout=10.0):
        _STARTING.release()


class ProcessModel:
    """A :class:`~archivist.protocols.LoadedModel` whose work happens in a child process."""

    def __init__(self, folder: Path, provider: str | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe()
        self._cancel = ctx.Event()
        # _lock: one generation (or request) at a time. _io: one reader/writer of the pipe
        # at a time, so an aside question (answer_aside) can be asked while a stream holds
        # _lock; stream messages read while waiting for the aside's answer wait in _pending.
        self._lock = threading.Lock()
        self._io = threading.Lock()
        self._pending: deque[tuple[Any, ...]] = deque()
        self._aside_ids = itertools.count(1)
        self._process = ctx.Process(
            target=_serve,
            args=(child_end, str(folder), provider, self._cancel),
            name="archivist-model",
            daemon=True,
        )
        with _STARTING:
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

    def _next_message(self, wait_s: float | None = None) -> tuple[Any, ...] | None:
        """The next message for a request or stream (None if none came within ``wait_s``):
        one an aside left waiting, else one from the pipe; a late aside answer nobody
        waits for any more is dropped."""
        with self._io:
            if self._pending:
                return self._pending.popleft()
            while wait_s is None or self._conn.poll(wait_s):
                reply = self._receive()
                if reply[0] != "aside":
                    return reply
            return None

    def _call(self, *request: Any) -> Any:
        with self._lock:
            with self._io:
                self._conn.send(request)
            reply = self._next_message()
        assert reply is not None
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
            with self._io:
                self._conn.send(("generate", prompt, dataclasses.asdict(options)))
            finished = False
            try:
                while True:
                    # Poll in short steps so a cancel from the caller reaches the child
                    # even while no token arrives (during a long prefill).
                    while (message := self._next_message(0.05)) is None:
                        if cancel is not None and cancel.is_set():
                            self._cancel.set()
                    kind, payload = message
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
                        kind, payload = self._next_message()  # type: ignore[misc]
                        if kind in ("done", "error"):
                            if kind == "done":
                                _fill(stats, payload)
                            break

    def answer_aside(self, messages: Sequence[ChatMessage], max_new_tokens: int = 8, timeout_s: float = 3.0) -> str:
        """A short greedy answer from the child, even while a stream is suspended.

        Why: see :meth:`archivist.engine.runtime.GenaiModel.answer_aside`. The child reads
        aside questions between the tokens of a running answer (and between requests when
        idle), so this does not wait for :attr:`_lock`. Each question carries an id, so an
        answer that comes after its asker gave up is recognised and dropped.
        """
        ident = next(self._aside_ids)
        deadline = time.monotonic() + timeout_s + 1.0  # the child stops itself at timeout_s
        with self._io:
            self._conn.send(("aside", ident, [m.to_dict() for m in messages], max_new_tokens, timeout_s))
            while (left := deadline - time.monotonic()) > 0 and self._conn.poll(left):
                reply = self._receive()
                if reply[0] != "aside":
                    self._pending.append(reply)  # the running stream's, read in order later
                elif reply[1] == ident:
                    if reply[2] is None:
                        raise ArchivistError(f"the model process could not answer aside: {reply[3]}")
                    return str(reply[2])
        raise TimeoutError(f"the model process gave no aside answer within {timeout_s:g} s")

    def close(self) -> None:
        if self._process.is_alive():
            try:
                with self._lock, self._io:
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
        try:
            model = load_model(Path(folder), provider)
        except Exception as exc:
            conn.send(("error", str(exc)))
            return
        conn.send(("ready", model.info.to_dict(), model.provider))
    except OSError:  # the parent is gone (the app closed while the model loaded)
        return
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
            elif kind == "aside":
                _answer_aside(conn, model, request)
            elif kind == "generate":
                stats = GenerationStats()
                options = GenerationOptions(**request[2])
                for piece in model.stream(request[1], options, stats, cancel):
                    conn.send(("text", piece))
                    while conn.poll():  # only aside questions arrive while generating
                        _answer_aside(conn, model, conn.recv())
                conn.send(("done", stats.to_dict()))
        except Exception as exc:  # reported to the caller, the child lives on
            conn.send(("error", str(exc)))


def _answer_aside(conn: Connection, model: Any, request: tuple[Any, ...]) -> None:
    """Answer ``("aside", id, messages, max_new_tokens, timeout_s)``; a failure is the
    asker's to handle (None and the reason), never the running stream's."""
    _, ident, messages, max_new_tokens, timeout_s = request
    try:
        chat = [ChatMessage(m["role"], m["content"]) for m in messages]
        conn.send(("aside", ident, model.answer_aside(chat, max_new_tokens, timeout_s), ""))
    except Exception as exc:  # noqa: BLE001 - reported to the asker
        conn.send(("aside", ident, None, f"{type(exc).__name__}: {exc}"))
