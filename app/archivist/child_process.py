"""Work in a spawned child process, talked to in typed messages over a pipe.

Three kinds of work leave the app's process: generating (onnxruntime-genai holds the GIL
for a whole prefill, which froze the window for seconds), indexing (parsing and
tokenizing hold it in long stretches) and converting models (numpy work, the same).
Each runs in a child made here, and the two ends exchange instances of frozen
dataclasses. Each kind of work declares its own request and reply dataclasses next to
its loop, so the exchange is written down in types, not in a tuple protocol described
in a docstring. Waiting on a pipe releases the GIL, so the parent's other threads (the
window's event loop) keep running. A crash in native code ends the child, not the app,
and the parent sees :class:`ChildEnded`.

    child = ChildProcess(serve, (home,), name="archivist-library")
    child.send(Index(paths=("/docs",)))
    while (message := child.receive()) is not None: ...
    child.close(goodbye=Close())

``serve(channel, *args)`` runs in the child. Its end of the pipe is a :class:`Channel`,
and ``channel.cancelled`` tells it the parent asked to stop the current request.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

# Held while a child is being started: Process.start() hands the spawned child its
# bootstrap data over a pipe, and a parent that exits in the middle of that (the window
# closed while the model was still starting, as a 300 ms screenshot run does) leaves the
# child dying with an EOFError traceback. At exit we wait for a start in progress.
_STARTING = threading.Lock()


@atexit.register
def _let_a_start_finish() -> None:
    if _STARTING.acquire(timeout=10.0):
        _STARTING.release()


# The exit status of a child that went over the memory ceiling :func:`limit_memory` set
# (or let a MemoryError escape its target): the parent tells it by ChildEnded.over_memory.
MEMORY_EXIT = 86


class ChildEnded(Exception):
    """The child process is gone (it ended, crashed or was killed); ``exitcode`` says how
    (negative: the signal that ended it); ``over_memory``: it went over its memory ceiling."""

    def __init__(self, name: str, exitcode: int | None) -> None:
        super().__init__(f"the {name} process ended unexpectedly (exit code {exitcode})")
        self.exitcode = exitcode

    @property
    def over_memory(self) -> bool:
        return self.exitcode == MEMORY_EXIT


def limit_memory(megabytes: float, *, watchdog: bool | None = None) -> None:
    """Let the calling process (a child) use at most ``megabytes`` more memory than now.

    On Linux the kernel enforces it: the address space is capped (``RLIMIT_AS``), so an
    allocation past the ceiling fails and Python raises MemoryError (which, uncaught,
    ends the child with :data:`MEMORY_EXIT`). Elsewhere (macOS does not enforce
    ``RLIMIT_AS``, Windows has no rlimits), or with ``watchdog=True``, a thread reads the
    process's peak resident memory every 20 ms and ends it with :data:`MEMORY_EXIT` once
    it is over; that one sees an allocation only after it is made, so it bounds growth,
    not a single huge block. Call it in the child only, after its own setting up.
    """
    if watchdog is None:
        watchdog = not sys.platform.startswith("linux")
    if not watchdog:
        import resource

        size = _linux_status_kb("VmSize") * 1024
        ceiling = int(size + megabytes * 1024 * 1024)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
        return
    most = _peak_rss_bytes() + int(megabytes * 1024 * 1024)

    def watch() -> None:
        while _peak_rss_bytes() <= most:
            threading.Event().wait(0.02)
        os._exit(MEMORY_EXIT)

    threading.Thread(target=watch, name="memory-ceiling", daemon=True).start()


def _linux_status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _peak_rss_bytes() -> int:
    """The most resident memory this process has held, in bytes."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        class Counters(ctypes.Structure):
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                        ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                        ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaNonPagedPoolUsage", ctypes.c_size_t), ("PagefileUsage", ctypes.c_size_t),
                        ("PeakPagefileUsage", ctypes.c_size_t)]

        counters = Counters()
        counters.cb = ctypes.sizeof(Counters)
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        psapi = ctypes.windll.psapi  # type: ignore[attr-defined]
        psapi.GetProcessMemoryInfo(kernel32.GetCurrentProcess(), ctypes.byref(counters), counters.cb)
        return int(counters.PeakWorkingSetSize)
    if sys.platform.startswith("linux"):
        # VmHWM is this process image's own peak. ru_maxrss is not: it carries over the
        # peak of the parent that forked it (a spawned child inherits a 2 GB test run's),
        # so a ceiling measured from it was never reached.
        return _linux_status_kb("VmHWM") * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


class Channel:
    """The child's end: messages from the parent, and the parent's request to stop."""

    def __init__(self, conn: Connection, cancel: Any) -> None:
        self._conn = conn
        self._cancel = cancel
        self._lock = threading.Lock()  # a child may send from a second thread (a watcher)

    def send(self, message: object) -> bool:
        """Send ``message``; False when the parent has gone (the caller's loop then ends)."""
        with self._lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                return False
        return True

    def receive(self) -> object | None:
        """The parent's next message, or None once the parent has gone."""
        try:
            message: object = self._conn.recv()
        except (EOFError, OSError):
            return None
        return message

    def poll(self, timeout: float = 0.0) -> bool:
        return self._conn.poll(timeout)

    @property
    def cancelled(self) -> bool:
        """Whether the parent asked to stop the request running now."""
        return bool(self._cancel.is_set())

    @property
    def cancel_event(self) -> threading.Event:
        """The parent's stop request as an event, for code that takes a ``cancel``
        :class:`threading.Event` (a model's ``stream``): a process-shared event with the
        same ``is_set`` and ``wait``, set by :meth:`ChildProcess.cancel`."""
        event: threading.Event = self._cancel
        return event


def _main(target: Callable[..., None], conn: Connection, cancel: Any, args: tuple[Any, ...]) -> None:
    import archivist  # noqa: F401  (switches telemetry off before onnxruntime loads in the child)

    channel = Channel(conn, cancel)
    try:
        target(channel, *args)
    except MemoryError:  # over the ceiling limit_memory set: the parent is told by the exit status
        os._exit(MEMORY_EXIT)
    finally:
        conn.close()


class ChildProcess:
    """The parent's end of a spawned child running ``target(channel, *args)``.

    ``send`` and ``receive`` are each safe to call from several threads (one lock for
    sending, one for receiving); ``cancel`` sets the flag the child reads as
    ``channel.cancelled`` and ``clear_cancel`` resets it for the next request.
    """

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...] = (), *, name: str,
                 starts_children: bool = False) -> None:
        """``starts_children``: the child starts children of its own (the library's child
        reads files in a reader child). Python forbids that to a daemonic process, so such
        a child is not daemonic, and is closed when this process exits instead."""
        ctx = multiprocessing.get_context("spawn")  # no fork: the parent holds threads and Qt
        self.name = name
        self._conn, child_end = ctx.Pipe()
        self._cancel = ctx.Event()
        self._send_lock = threading.Lock()
        self._receive_lock = threading.Lock()
        self._process = ctx.Process(target=_main, args=(target, child_end, self._cancel, args), name=name,
                                    daemon=not starts_children)
        with _STARTING:
            self._process.start()
        child_end.close()
        self.closed = False
        if starts_children:  # before multiprocessing's own exit handler, which would wait for it
            atexit.register(self.close)

    def send(self, message: object) -> None:
        """Send ``message``; raises :class:`ChildEnded` when the child is gone."""
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError) as exc:
                raise ChildEnded(self.name, self._process.exitcode) from exc

    def receive(self, timeout: float | None = None) -> object | None:
        """The child's next message; None when none came within ``timeout`` seconds
        (``None`` waits as long as it takes). Raises :class:`ChildEnded` when the child
        has ended and nothing is left to read."""
        with self._receive_lock:
            try:
                if timeout is not None and not self._conn.poll(timeout):
                    return None
                message: object = self._conn.recv()
            except (EOFError, OSError) as exc:
                self._process.join(1)
                raise ChildEnded(self.name, self._process.exitcode) from exc
        return message

    def cancel(self) -> None:
        self._cancel.set()

    def clear_cancel(self) -> None:
        self._cancel.clear()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def close(self, goodbye: object | None = None, timeout: float = 5.0) -> None:
        """Ask the child to end (``goodbye``, when given, is sent first), wait up to
        ``timeout`` seconds, then terminate it, then kill it. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        self._cancel.set()
        if self._process.is_alive():
            if goodbye is not None:
                try:
                    self.send(goodbye)
                except ChildEnded:
                    pass
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._conn.close()
