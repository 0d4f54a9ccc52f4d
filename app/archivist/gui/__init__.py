"""The desktop app: PySide6 views over the Qt-free core.

Importing this package imports no Qt, so the command line can offer ``archivist gui``
without paying for PySide6 until the window is asked for. Each page adapts one part of
the core (the Assistant, the conversation store, the plugin host, the settings store);
none of them holds logic the CLI could not reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archivist.application import Application


def run_gui(
    home: Path | None,
    *,
    safe_mode: bool = False,
    screenshot: Path | None = None,
    demo: bool = False,
    app: Application | None = None,
) -> int:
    """Run the window until it closes and return the exit code.

    ``screenshot``: save the window as a PNG once it is ready and exit; with ``demo``,
    first ask one question in a throwaway home and wait for the whole answer. ``app``:
    an Application the caller already made (the command line's), used instead of
    making another over the same home; the caller closes it.
    """
    from archivist.gui.launch import run_gui as run

    return run(home, safe_mode=safe_mode, screenshot=screenshot, demo=demo, app=app)


__all__ = ["run_gui"]
