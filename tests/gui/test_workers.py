"""Workers finishing after the window is gone end quietly instead of raising at exit."""

from __future__ import annotations

import threading

import shiboken6

from archivist.gui.workers import Task


def test_a_task_that_ends_after_its_qobject_was_deleted_raises_nothing(qtbot, monkeypatch) -> None:
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    release = threading.Event()
    task = Task(lambda: release.wait(10) and "late result", name="archivist-test-task").start()
    shiboken6.delete(task)  # what Qt does to the window's children when the app quits
    release.set()
    task._thread.join(10)
    assert not task._thread.is_alive()
    assert errors == []
