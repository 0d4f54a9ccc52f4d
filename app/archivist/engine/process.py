"""The model in a child process, so generating never freezes the caller's other threads.

onnxruntime-genai holds Python's GIL for the whole of a prompt's prefill and for each
decoded token (measured: a 401-token prompt stopped another thread for 5.4 s). In the
desktop window that is a frozen UI, so the GUI runs the model here: a child process
(:class:`archivist.child_process.ChildProcess`) that owns the model and streams text
back. Waiting on the pipe releases the GIL, so the UI thread stays free. A crash in
native code takes down the child, not the app, and is reported as a load error.

The exchange, in the dataclasses below: the child answers :class:`Ready` or
:class:`Failed` once loaded; then each request gets one reply (:class:`TokenCount`,
:class:`Prompt` or :class:`Failed`), except :class:`Generate`, answered by
:class:`Text` pieces and then :class:`Finished` (or :class:`Failed`). An
:class:`AskAside` may come at any time, even between two pieces of a running answer,
and is answered by the :class:`AsideAnswer` carrying its ``ident``.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archivist.child_process import Channel, ChildEnded, ChildProcess
from archivist.errors import ArchivistError, ModelLoadError
from archivist.types import ChatMessage, GenerationOptions, GenerationStats, ModelInfo

if TYPE_CHECKING:
    from archivist.engine.runtime import GenaiModel

# Seconds to wait for the child to load the model before giving up.
LOAD_TIMEOUT_S = 300.0
# Seconds close() waits for a running answer to stop before ending the child anyway.
CLOSE_WAIT_S = 10.0


# -- parent to child ------------------------------------------------------------------

@dataclass(frozen=True)
class CountTokens:
    text: str


@dataclass(frozen=True)
class ApplyTemplate:
    messages: tuple[ChatMessage, ...]


@dataclass(frozen=True)
class Generate:
    prompt: str
    options: GenerationOptions


@dataclass(frozen=True)
class AskAside:
    """A short greedy answer wanted now, even while a :class:`Generate` runs."""

    ident: int
    messages: tuple[ChatMessage, ...]
    max_new_tokens: int
    timeout_s: float


@dataclass(frozen=True)
class Close:
    pass


# -- child to parent ------------------------------------------------------------------

@dataclass(frozen=True)
class Ready:
    info: ModelInfo
    provider: str


@dataclass(frozen=True)
class Failed:
    """The model could not load, or a request failed (the child lives on)."""

    reason: str


@dataclass(frozen=True)
class TokenCount:
    count: int


@dataclass(frozen=True)
class Prompt:
    text: str


@dataclass(frozen=True)
class Text:
    piece: str


@dataclass(frozen=True)
class Finished:
    stats: GenerationStats


@dataclass(frozen=True)
class AsideAnswer:
    """The answer to the :class:`AskAside` with this ``ident``; None and ``error`` when
    there is none."""

    ident: int
    answer: str | None
    error: str = ""


class ProcessModel:
    """A :class:`~archivist.protocols.LoadedModel` (and :class:`~archivist.protocols.AsideModel`)
    whose work happens in a child process."""

    def __init__(self, folder: Path, provider: str | None) -> None:
        # _lock: one generation (or request) at a time. _io: one reader of the pipe at a
        # time, so an aside question (answer_aside) can be asked while a stream holds
        # _lock; stream messages read while waiting for the aside's answer wait in _pending.
        self._lock = threading.Lock()
        self._io = threading.Lock()
        self._pending: deque[object] = deque()
        self._aside_ids = itertools.count(1)
        self._child = ChildProcess(_serve, (str(folder), provider), name="archivist-model")
        try:
            reply = self._child.receive(LOAD_TIMEOUT_S)
        except ChildEnded as exc:
            raise ModelLoadError(str(exc)) from exc
        if reply is None:
            self._child.close(timeout=0)
            raise ModelLoadError(f"the model process did not load {folder} within {LOAD_TIMEOUT_S:g} s")
        if not isinstance(reply, Ready):
            self._child.close()
            raise ModelLoadError(reply.reason if isinstance(reply, Failed) else f"the model process said {reply!r}")
        self.info = reply.info
        self.provider = reply.provider

    def _receive(self, wait_s: float | None = None) -> object | None:
        try:
            return self._child.receive(wait_s)
        except ChildEnded as exc:
            raise ModelLoadError(str(exc)) from exc

    def _send(self, message: object) -> None:
        try:
            self._child.send(message)
        except ChildEnded as exc:
            raise ModelLoadError(str(exc)) from exc

    def _next_message(self, wait_s: float | None = None) -> object | None:
        """The next message for a request or stream (None if none came within ``wait_s``):
        one an aside left waiting, else one from the pipe; a late aside answer nobody
        waits for any more is dropped."""
        with self._io:
            if self._pending:
                return self._pending.popleft()
            while (message := self._receive(wait_s)) is not None:
                if not isinstance(message, AsideAnswer):
                    return message
            return None

    def _call(self, request: CountTokens | ApplyTemplate) -> object:
        with self._lock:
            self._send(request)
            reply = self._next_message()
        if isinstance(reply, Failed):
            raise ArchivistError(reply.reason)
        return reply

    def count_tokens(self, text: str) -> int:
        reply = self._call(CountTokens(text))
        assert isinstance(reply, TokenCount), reply
        return reply.count

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> str:
        reply = self._call(ApplyTemplate(tuple(messages)))
        assert isinstance(reply, Prompt), reply
        return reply.text

    def stream(
        self,
        prompt: str,
        options: GenerationOptions,
        stats: GenerationStats | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        with self._lock:
            self._child.clear_cancel()
            self._send(Generate(prompt, options))
            finished = False
            try:
                while True:
                    # Poll in short steps so a cancel from the caller reaches the child
                    # even while no token arrives (during a long prefill).
                    while (message := self._next_message(0.05)) is None:
                        if cancel is not None and cancel.is_set():
                            self._child.cancel()
                    if isinstance(message, Text):
                        if cancel is not None and cancel.is_set():
                            self._child.cancel()
                        yield message.piece
                    elif isinstance(message, Finished):
                        _fill(stats, message.stats)
                        finished = True
                        return
                    elif isinstance(message, Failed):
                        finished = True
                        raise ArchivistError(message.reason)
            finally:
                if not finished:
                    # The caller stopped reading: stop the child and drain to its end.
                    self._child.cancel()
                    while not isinstance(message := self._next_message(), (Finished, Failed)):
                        pass
                    if isinstance(message, Finished):
                        _fill(stats, message.stats)

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
            self._send(AskAside(ident, tuple(messages), max_new_tokens, timeout_s))
            while (left := deadline - time.monotonic()) > 0 and (reply := self._receive(left)) is not None:
                if not isinstance(reply, AsideAnswer):
                    self._pending.append(reply)  # the running stream's, read in order later
                elif reply.ident == ident:
                    if reply.answer is None:
                        raise ArchivistError(f"the model process could not answer aside: {reply.error}")
                    return reply.answer
        raise TimeoutError(f"the model process gave no aside answer within {timeout_s:g} s")

    def close(self) -> None:
        """Stop any running answer, then end the child (it frees the model)."""
        self._child.cancel()
        locked = self._lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            self._child.close(goodbye=Close())
        finally:
            if locked:
                self._lock.release()


def _fill(stats: GenerationStats, values: GenerationStats) -> None:
    for f in dataclasses.fields(values):
        setattr(stats, f.name, getattr(values, f.name))


def _serve(channel: Channel, folder: str, provider: str | None) -> None:
    """The child's loop: load once, then answer requests until told to close."""
    from archivist.engine.runtime import load_model

    try:
        model = load_model(Path(folder), provider)
    except Exception as exc:
        channel.send(Failed(str(exc)))
        return
    if not channel.send(Ready(model.info, model.provider)):
        return  # the parent is gone (the app closed while the model loaded)
    while (request := channel.receive()) is not None:
        if isinstance(request, Close):
            break
        try:
            if isinstance(request, CountTokens):
                channel.send(TokenCount(model.count_tokens(request.text)))
            elif isinstance(request, ApplyTemplate):
                channel.send(Prompt(model.apply_chat_template(request.messages)))
            elif isinstance(request, AskAside):
                _answer_aside(channel, model, request)
            elif isinstance(request, Generate) and not _generate(channel, model, request):
                break
        except Exception as exc:  # reported to the caller, the child lives on
            channel.send(Failed(str(exc)))
    model.close()


def _generate(channel: Channel, model: GenaiModel, request: Generate) -> bool:
    """Stream one answer, answering asides between its pieces; False when the parent
    has gone or asked the child to close meanwhile."""
    stats = GenerationStats()
    for piece in model.stream(request.prompt, request.options, stats, channel.cancel_event):
        if not channel.send(Text(piece)):
            return False
        while channel.poll():  # asides arrive while generating, and a close may
            message = channel.receive()
            if isinstance(message, AskAside):
                _answer_aside(channel, model, message)
            elif message is None or isinstance(message, Close):
                return False
    return channel.send(Finished(stats))


def _answer_aside(channel: Channel, model: GenaiModel, request: AskAside) -> None:
    """Answer ``request``; a failure is the asker's to handle (None and the reason),
    never the running stream's."""
    try:
        answer = model.answer_aside(list(request.messages), request.max_new_tokens, request.timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported to the asker
        channel.send(AsideAnswer(request.ident, None, f"{type(exc).__name__}: {exc}"))
        return
    channel.send(AsideAnswer(request.ident, answer))
