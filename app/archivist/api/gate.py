"""One generation at a time, with a bounded queue behind it.

The application keeps one model in memory and a model answers one prompt at a time, so
chat requests take turns. A request first takes a *ticket* (:meth:`Gate.ticket`), which
fails at once with :class:`QueueFull` when ``max_waiting`` requests already wait: the
client gets a 429 before anything else happens. The worker thread that runs the turn then
waits for the slot (:meth:`Ticket.wait`), giving up when its client went away (its cancel
event) or after ``timeout_s`` (:class:`QueueTimeout`, a 503), and frees it when the turn
has really ended, so the next turn never overlaps it on the model.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class QueueFull(Exception):
    """Too many requests are waiting already."""


class QueueTimeout(Exception):
    """A request waited longer than the gate allows."""


class Gate:
    def __init__(self, max_waiting: int = 8, timeout_s: float = 300.0, slots: int = 1) -> None:
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self.slots = slots
        self._cv = threading.Condition()
        self._busy = 0
        self._queue: deque[Ticket] = deque()  # served first come, first served

    @property
    def waiting(self) -> int:
        with self._cv:
            return len(self._queue)

    @property
    def busy(self) -> int:
        with self._cv:
            return self._busy

    def ticket(self) -> Ticket:
        """A place in the queue, or :class:`QueueFull` (nothing is held then)."""
        with self._cv:
            if len(self._queue) >= self.max_waiting and (self._busy >= self.slots or self._queue):
                raise QueueFull(f"{len(self._queue)} requests are already waiting for the model")
            ticket = Ticket(self)
            self._queue.append(ticket)
            return ticket

    def _wait(self, ticket: Ticket, cancel: threading.Event | None) -> bool:
        deadline = time.monotonic() + self.timeout_s
        with self._cv:
            try:
                while self._busy >= self.slots or self._queue[0] is not ticket:
                    if cancel is not None and cancel.is_set():
                        return False
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise QueueTimeout(f"waited {self.timeout_s:g} s for the model, which was busy all along")
                    self._cv.wait(min(left, 0.1))
                self._busy += 1
                return True
            finally:
                self._leave(ticket)

    def _leave(self, ticket: Ticket) -> None:
        with self._cv:
            if ticket in self._queue:
                self._queue.remove(ticket)
                self._cv.notify_all()

    def _release(self) -> None:
        with self._cv:
            self._busy -= 1
            self._cv.notify_all()


class Ticket:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._held = False
        self._done = False

    def wait(self, cancel: threading.Event | None = None) -> bool:
        """Wait for the slot: True once held, False when ``cancel`` was set first;
        :class:`QueueTimeout` past the gate's timeout."""
        self._held = self.gate._wait(self, cancel)
        return self._held

    def release(self) -> None:
        """Free the slot, or the place in the queue; safe to call more than once."""
        if self._done:
            return
        self._done = True
        if self._held:
            self.gate._release()
        else:
            self.gate._leave(self)
