"""Which collections answer a question: the user's own library, shared ones, or some of them.

A retriever that names a collection (:class:`~archivist.protocols.SharedCollection`:
a team collection on a server, say) can be chosen by that name; every other retriever
searches the user's own library, chosen by the reserved name :data:`LIBRARY`. A choice
is a set of these names; ``None`` means all of them, today's and any added later. The
assistant applies it (:meth:`archivist.assistant.Assistant.retrieve`), the conversation
keeps it, and the front ends offer the names :func:`known_collections` lists. Qt-free and
plugin-free: the core does not know which plugin provides a collection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from archivist.errors import ArchivistError
from archivist.protocols import SharedCollection

if TYPE_CHECKING:
    from archivist.plugins import PluginHost

log = logging.getLogger(__name__)

#: The name that chooses the user's own library (every retriever that names no collection).
LIBRARY = "library"

#: A choice of collections: their names; None for all of them.
Choice = frozenset[str] | None


class UnknownCollection(ArchivistError, LookupError):
    """A collection name that no enabled retriever searches; the message lists the known ones."""


def collection_of(retriever: object) -> str:
    """The name that chooses ``retriever``: its ``collection``, else :data:`LIBRARY`."""
    try:
        name = retriever.collection if isinstance(retriever, SharedCollection) else None
    except Exception as exc:  # noqa: BLE001 - a plugin's property must not stop a question
        log.warning("%s.collection failed (%s): searched as part of your library", type(retriever).__name__, exc)
        return LIBRARY
    return name if isinstance(name, str) and name else LIBRARY


def known_collections(host: PluginHost) -> list[str]:
    """The names a user may choose: :data:`LIBRARY` first (always: it may still be
    empty), then each collection an enabled retriever names, sorted."""
    shared = {collection_of(c.obj) for c in host.retrievers()} - {LIBRARY}
    return [LIBRARY, *sorted(shared)]


def check_choice(names: Iterable[str], known: Sequence[str]) -> frozenset[str]:
    """``names`` as a choice, or :class:`UnknownCollection` naming what may be chosen."""
    chosen = frozenset(name.strip() for name in names)
    unknown = sorted(chosen - set(known))
    if unknown or not chosen:
        listed = ", ".join(f"{name} (your own library)" if name == LIBRARY else name for name in known)
        what = (f"no collection named {unknown[0]!r} here" if len(unknown) == 1 else
                f"no collections named {', '.join(repr(n) for n in unknown)} here" if unknown else
                "no collection chosen")
        raise UnknownCollection(f"{what}: choose from {listed}")
    return chosen


def describe_choice(choice: Choice) -> str:
    """A choice in words for people: "all collections", "your library and docs"."""
    if choice is None:
        return "all collections"
    names = ["your library" if name == LIBRARY else name for name in sorted(choice, key=lambda n: (n != LIBRARY, n))]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
