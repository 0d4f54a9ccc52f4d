"""The frozen app's entry point: ``archivist`` is the command line, ``archivist-gui`` the window.

Windows and macOS need a windowed executable for the Start menu and the .app, so the
spec builds both from this script there; the windowed one runs ``archivist gui``
(global options such as ``--safe-mode`` pass through). On Linux the desktop entry
runs ``archivist gui`` itself.
"""

from __future__ import annotations

import os
import sys

GUI_EXECUTABLE = "archivist-gui"


def _subcommand(args: list[str]) -> str | None:
    """The first word that is not a global option or its value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--home":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def arguments(executable: str, argv: list[str]) -> list[str]:
    """The command line for ``archivist.cli.main``."""
    # Finder used to pass -psn_0_12345 to apps it starts (older macOS): not ours.
    args = [a for a in argv if not a.startswith("-psn_")]
    name = os.path.splitext(os.path.basename(executable))[0].lower()
    if name == GUI_EXECUTABLE and _subcommand(args) is None:
        args.append("gui")
    return args


def main() -> None:
    # multiprocessing starts its helpers (the semaphore tracker that tqdm's lock needs,
    # workers) as `<this executable> -B -s -c ...`: run those here, not through the CLI.
    import multiprocessing

    multiprocessing.freeze_support()
    from archivist.cli import main as cli

    cli(arguments(sys.executable, sys.argv[1:]))


if __name__ == "__main__":
    main()
