"""archivist-team: document collections shared through PostgreSQL with pgvector.

A built-in plugin, built like a third party's (it imports only ``archivist``, and the
sentence encoder from ``archivist_models`` as the local library does). Each collection
the user adds (``archivist collections add NAME postgresql://...``) is searched beside
the local library when a question is asked (a retriever per collection, which the user
may choose or leave out per conversation by the collection's name), and indexed
with ``archivist collections index NAME PATH``. Passages, vectors and where each passage
came from live in PostgreSQL; row-level security decides who sees which collection.

- ``schema.py``: the tables, their version, making a collection and its role.
- ``connection.py``, ``keychain.py``, ``registry.py``: connecting; passwords in the
  keychain; the collections this home added (no passwords).
- ``chunking.py``, ``encoder.py``, ``ingestion.py``: reading, chunking and embedding a
  file, and writing it in one transaction.
- ``collection.py``: :class:`~archivist_team.collection.TeamCollection`, library and retriever.
- ``spread.py``: ingestion spread over a Ray cluster (``--ray``).
- ``commands.py``: ``archivist collections ...``.

psycopg, pgvector and ray come with ``pip install 'archivist[team]'``; without them the
plugin loads, registers nothing that needs them, and its commands say what to install.

Settings (``config.toml``)::

    [team]
    library = "NAME"         # optional: this collection is the library `archivist index` fills
    min_similarity = 0.30    # passages less similar to the question are not offered
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from archivist import PluginContext, hookimpl

ARCHIVIST_API_VERSION = "1.2"
PLUGIN = "team"
log = logging.getLogger(__name__)


def _settings(context: PluginContext) -> dict[str, Any]:
    settings = context.settings.get("team", {})
    return settings if isinstance(settings, dict) else {}


def open_collections(context: PluginContext) -> list[Any]:
    """A :class:`TeamCollection` for each collection this home added (none without the
    optional packages: the commands say what to install)."""
    from archivist_team import connection
    from archivist_team.registry import Registry

    folder = context.home / "plugins" / PLUGIN
    entries = Registry(folder).entries()
    if not entries:
        return []
    try:
        connection.require()
    except connection.MissingPackages as exc:
        log.warning("%s", exc)
        return []
    from archivist_team.commands import open_entry

    settings = _settings(context)
    return [open_entry(context, e, float(settings.get("min_similarity", 0.30))) for e in entries]


@hookimpl
def register_retrievers(register: Callable[[Any], None], context: PluginContext) -> None:
    for collection in open_collections(context):
        register(collection)


@hookimpl(tryfirst=True)  # the collection the user chose comes before the local library
def register_libraries(register: Callable[[Any], None], context: PluginContext) -> None:
    name = _settings(context).get("library")
    if not name:
        return
    for collection in open_collections(context):
        if collection.collection == name:
            register(collection)


@hookimpl
def register_commands(cli: Any, context: PluginContext) -> None:
    from archivist_team.commands import add_commands

    add_commands(cli, context)
