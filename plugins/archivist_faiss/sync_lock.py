"""One sync of an index at a time, across processes: a lock on a file beside ``index.db``.

Two ``archivist index`` runs on the same folder (or the window's Library page and the
command line) each read which files the index knew, embedded the changed ones, then
both wrote them: the second failed at the end with an ``IntegrityError``. Now the
second waits for the first, saying so once in the log (printed by ``archivist index``,
shown by the Library page), then finds the files the first indexed unchanged. The
lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows), so
it is let go when a process ends, however it ends.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

WAIT_STEP_S = 0.2


class SyncLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def held(self, cancel: threading.Event | None = None) -> Iterator[bool]:
        """Hold the lock, waiting for another process's sync to end; yields False (not
        holding it) when ``cancel`` is set while waiting."""
        with open(self.path, "a+b") as fh:
            got = _try_lock(fh)
            if not got:
                log.warning("another Archivist process is indexing this library (%s); waiting for it to finish",
                            self.path.parent)
                while not got and not (cancel is not None and cancel.is_set()):
                    time.sleep(WAIT_STEP_S)
                    got = _try_lock(fh)
            try:
                yield got
            finally:
                if got:
                    _unlock(fh)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> bool:
        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
