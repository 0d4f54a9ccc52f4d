"""Work that must not run on the UI thread: a chat turn, loading a model, any slow call.

Each worker runs a plain Python thread and reports through Qt signals. The QObject lives
on the UI thread, so a signal emitted from the worker is queued and its slots run on the
UI thread: widgets are only ever touched there. The core stays unaware of Qt; it is
driven exactly as the CLI drives it (``Assistant.stream`` with a ``cancel`` event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from archivist.errors import ArchivistError

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """One line a user can read; the traceback goes to the log."""
    if isinstance(exc, ArchivistError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _log_failure(what: str, exc: BaseException) -> None:
    """The user is shown the one line; the traceback is for ``--debug`` (as in the CLI)."""
    if isinstance(exc, ArchivistError):
        log.info("%s: %s", what, exc)
    else:
        log.debug("%s failed", what, exc_info=exc)


def emit(signal: Any, *args: Any) -> bool:
    """``signal.emit(*args)`` from a worker thread, tolerating a window already closed.

    When the app quits while a worker is still finishing, Qt has deleted the QObject
    behind the signal and PySide raises "Signal source has been deleted". Nobody is left
    to tell, so the message is dropped instead of printing a traceback at exit.
    """
    try:
        signal.emit(*args)
    except RuntimeError as exc:
        if "deleted" not in str(exc):
            raise
        return False
    return True


class Task(QObject):
    """Runs ``fn()`` on a worker thread; ``succeeded(result)`` or ``failed(message)``.

    The caller keeps a reference until ``ended`` (the thread holds one too, so the
    object outlives the call even if the caller drops it early).
    """

    succeeded = Signal(object)
    failed = Signal(str)
    ended = Signal()

    def __init__(self, fn: Callable[[], Any], name: str = "archivist-task") -> None:
        super().__init__()
        self._fn = fn
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Task:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            result = self._fn()
        except BaseException as exc:  # shown to the user; the thread must not die silently
            _log_failure("background task", exc)
            emit(self.failed, describe_error(exc))
        else:
            emit(self.succeeded, result)
        finally:
            emit(self.ended)


class TurnWorker(QObject):
    """One chat turn on a worker thread, re-emitting the core's events as signals.

    ``prepare`` (optional) runs first on the same thread and returns the conversation
    id to continue (regenerate and edit use it to rewind the conversation); its result
    replaces ``conversation_id``. ``stop()`` sets the cancel event the model polls
    between tokens, so the turn ends within one token and is still persisted.
    """

    sources = Signal(object)  # tuple[Passage, ...]
    progress = Signal(str)  # reading pinned files: "Reading part 3 of 12 (report.pdf, pages 9-12)"
    text = Signal(str)
    notice = Signal(str, object)  # reason, Verdict | None
    done = Signal(object)  # Answer
    failed = Signal(str)
    ended = Signal()

    def __init__(
        self,
        assistant: Any,
        question: str,
        *,
        conversation_id: int | None,
        stream_kwargs: dict[str, Any],
        prepare: Callable[[], int | None] | None = None,
    ) -> None:
        super().__init__()
        self.assistant = assistant
        self.question = question
        self.conversation_id = conversation_id
        self.stream_kwargs = stream_kwargs
        self.prepare = prepare
        self.cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archivist-turn", daemon=True)

    def start(self) -> TurnWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self.prepare is not None:
                self.conversation_id = self.prepare()
            events = self.assistant.stream(
                self.question,
                conversation_id=self.conversation_id,
                cancel=self.cancel,
                **self.stream_kwargs,
            )
            for event in events:
                if event.kind == "text":
                    emit(self.text, event.text)
                elif event.kind == "sources":
                    emit(self.sources, event.sources)
                elif event.kind == "progress":
                    emit(self.progress, event.text)
                elif event.kind == "notice":
                    emit(self.notice, event.text, event.verdict)
                elif event.kind == "done":
                    emit(self.done, event.answer)
        except BaseException as exc:
            _log_failure("chat turn", exc)
            emit(self.failed, describe_error(exc))
        finally:
            emit(self.ended)


class ProgressTask(QObject):
    """Runs ``fn(report)`` on a worker thread; ``report(value)`` becomes ``progress(value)``.

    Reports are thinned to one every 100 ms, so a download's per-chunk callbacks do not
    flood the UI thread; the end is told by ``succeeded`` or ``failed``.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)  # message, exception class name
    ended = Signal()

    def __init__(self, fn: Callable[[Callable[[Any], None]], Any], name: str = "archivist-task") -> None:
        super().__init__()
        self._fn = fn
        self._last = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ProgressTask:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _report(self, value: Any, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 0.1:
            self._last = now
            emit(self.progress, value)

    def _run(self) -> None:
        try:
            result = self._fn(self._report)
        except BaseException as exc:
            _log_failure("background task", exc)
            emit(self.failed, describe_error(exc), type(exc).__name__)
        else:
            emit(self.succeeded, result)
        finally:
            emit(self.ended)
