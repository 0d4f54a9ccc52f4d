"""archivist-notebooks: Jupyter notebooks for Archivist.

A third-party plugin, built only on what :mod:`archivist` exports. Archivist finds it
through the ``archivist`` entry point declared in ``pyproject.toml`` and calls the hook
implementations below:

- ``register_loaders``: a loader for ``.ipynb`` files, so notebooks can be searched and
  cited by cell ("cell 3 (code)");
- ``register_commands``: ``archivist notebooks stats FILE [--json]``.

This module is imported whenever Archivist starts, so it stays small: the command's
code is imported only when the command line asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archivist import DocumentLoader, PluginContext, hookimpl
from archivist_notebooks.notebook import NotebookLoader

__version__ = "0.1.0"
# The plugin API this plugin was written against. Archivist refuses to load a plugin
# that needs a newer minor version, or another major version, than it provides.
ARCHIVIST_API_VERSION = "1.0"


@hookimpl
def register_loaders(register: Callable[[DocumentLoader], None], context: PluginContext) -> None:
    register(NotebookLoader())


@hookimpl
def register_commands(cli: Any, context: PluginContext) -> None:
    from archivist_notebooks.command import notebooks

    cli.add_command(notebooks)


__all__ = ["ARCHIVIST_API_VERSION", "NotebookLoader", "register_commands", "register_loaders"]
