"""The plugin contract: every hook Archivist calls, typed and documented.

A plugin implements any subset of these with ``@archivist.hookimpl``; an implementation
may accept fewer arguments than the spec names (pluggy passes only those it asks for).
Hooks that contribute things hand over a ``register`` callback rather than returning
values, so one plugin can contribute several objects and the host knows which plugin
each came from (to disable exactly that plugin when one of them fails).

Hooks are called in pluggy's order (last-registered plugin first, ``tryfirst`` and
``trylast`` honoured, hook wrappers around the rest): see
:meth:`archivist.plugins.PluginHost.call_hook`.

Every hook here is documented in ``docs/plugin-hooks.md``; a test fails if one is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from archivist.context import PluginContext
    from archivist.protocols import (
        DocumentLoader,
        Library,
        ModelBackend,
        Panel,
        Retriever,
        SafetyFilter,
    )

PROJECT = "archivist"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_model_backends(
    register: Callable[[ModelBackend], None], context: PluginContext
) -> None:
    """Register objects that load and run language models (:class:`ModelBackend`).

    The built-in backend runs ONNX models with onnxruntime-genai. Register another to
    run a different model format or a remote service the user configured.
    """


@hookspec
def register_retrievers(register: Callable[[Retriever], None], context: PluginContext) -> None:
    """Register objects that find passages for a question (:class:`Retriever`).

    The built-in FAISS plugin registers the hybrid dense + keyword retriever. Results of
    all retrievers are merged by rank before the prompt is packed.
    """


@hookspec
def register_libraries(register: Callable[[Library], None], context: PluginContext) -> None:
    """Register document collections the user adds folders to (:class:`Library`).

    The built-in FAISS plugin registers the local library. ``archivist index``,
    ``archivist sources`` and the window's Library page drive the first one in hook
    order through :mod:`archivist.library`, so a plugin can provide the library (a shared
    collection, its own index) without the front ends knowing which.
    """


@hookspec
def register_loaders(register: Callable[[DocumentLoader], None], context: PluginContext) -> None:
    """Register document loaders (:class:`DocumentLoader`) for more file formats.

    A loader declares the file extensions it reads; a loader a plugin registers replaces
    the built-in one for the same extension.
    """


@hookspec
def register_safety_filters(
    register: Callable[[SafetyFilter], None], context: PluginContext
) -> None:
    """Register safety filters (:class:`SafetyFilter`) run on input, passages and output.

    The strictest action of all filters wins for each piece of text.
    """


@hookspec
def register_commands(cli: click.Group, context: PluginContext) -> None:
    """Add commands to the ``archivist`` command line (a :class:`click.Group`).

    Use ``@cli.command()`` or ``@cli.group()`` inside the implementation, as with llm
    and datasette plugins. ``context.home`` is the home folder the user chose with
    ``--home`` or ``ARCHIVIST_HOME``, already resolved when commands are registered.
    """


@hookspec
def register_panels(register: Callable[[Panel], None], context: PluginContext) -> None:
    """Register pages for the desktop window's navigation (:class:`Panel`).

    Only the GUI calls this hook, so a plugin's Qt code is imported only when the window
    opens: import PySide6 inside ``Panel.create_widget``, never at module level.
    """
