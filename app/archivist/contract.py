"""What each hook's contributions must be, and how long their methods may take.

The plugin host checks every object a plugin registers against the Protocol of the hook
it came through (:data:`HOOK_PROTOCOLS`), and runs a contribution's methods under the
time limit of the Protocol that declares the method: the hook's own, or an optional
capability beside it (:data:`CAPABILITIES`), so ``count`` on a retriever is
``Countable.count`` and ``count`` on a library is ``Library.count``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from archivist.protocols import (
    Closable,
    Countable,
    DocumentLoader,
    Library,
    ModelBackend,
    ModelSource,
    Panel,
    Repairable,
    Retriever,
    SafetyFilter,
    SharedCollection,
    WatchesSources,
    Writable,
)

log = logging.getLogger(__name__)

# The Protocol each hook's ``register`` callback accepts.
HOOK_PROTOCOLS: dict[str, type] = {
    "register_model_backends": ModelBackend,
    "register_retrievers": Retriever,
    "register_libraries": Library,
    "register_loaders": DocumentLoader,
    "register_safety_filters": SafetyFilter,
    "register_panels": Panel,
}

# Optional Protocols a contribution may satisfy beside its hook's.
CAPABILITIES: tuple[type, ...] = (Countable, Closable, ModelSource, WatchesSources, Repairable, SharedCollection,
                                  Writable)

# Seconds a call to a contribution's method may take before Archivist stops waiting for
# it and disables its plugin, keyed "Protocol.method" by the Protocol that declares the
# method. None: no limit. Loading a model and syncing a library run without one (either
# takes minutes on a slow machine or a big folder, and reports its own progress), as do
# closing (it may flush files to disk) and building a panel's widget (Qt widgets must be
# made on the GUI thread, so that call cannot move to a guard thread). Calls to what a
# contribution returns (a loaded model's stream, a running watch) are not guarded here.
DEFAULT_TIMEOUTS: dict[str, float | None] = {
    "Retriever.search": 30.0,
    "Countable.count": 10.0,
    "SafetyFilter.screen": 5.0,
    "DocumentLoader.load": 120.0,
    "ModelBackend.providers": 10.0,
    "ModelBackend.can_load": 10.0,
    "ModelBackend.load": None,
    "ModelSource.models": 10.0,
    "Library.sources": 10.0,
    "Library.add_source": 10.0,
    "Library.remove_source": 120.0,
    "Library.skipped": 10.0,
    "Library.count": 10.0,
    "Library.sync": None,
    "WatchesSources.watch": 10.0,
    "Closable.close": None,
    "Repairable.check": 60.0,
    "Repairable.repair": None,
    "Writable.read_only": 10.0,
    "Panel.create_widget": None,
}

# What the host itself waits for, keyed as in ``[plugins.timeouts]``: ``import``, a
# plugin's module (its entry point) being imported; ``hooks``, each call of a hook
# implementation (``register_retrievers``, ``register_commands``, ...). A plugin that
# outlasts either is disabled for the session with an error saying so, and the app goes
# on: a hang at import or in a hook would otherwise hang every command, ``archivist
# plugins disable`` included. Python cannot stop the hanging code; it is left on a daemon
# thread. ``register_panels`` runs on the GUI thread (a panel may touch Qt) without one.
HOST_TIMEOUTS: dict[str, float | None] = {"import": 30.0, "hooks": 30.0}

# Methods whose failure does not switch their plugin off: the error is recorded and
# shown, and the caller fails closed for that one call. A safety filter's ``screen``
# that raises or outlasts its limit withholds the text it was given (see
# archivist.screening); switching the filter off would leave everything after one bad
# text unscreened.
KEPT_ON_FAILURE: frozenset[str] = frozenset({"SafetyFilter.screen"})


@functools.cache
def members(protocol: type) -> tuple[str, ...]:
    """The attributes and methods ``protocol`` declares, in the order it declares them
    (asked on every guarded call, so kept once per Protocol)."""
    names = list(getattr(protocol, "__annotations__", {}))
    names += [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
    return tuple(names)


def missing(obj: object, protocol: type) -> list[str]:
    """What ``obj`` lacks to satisfy ``protocol``: ``name`` for an attribute,
    ``search()`` for a method (also when the attribute is there but not callable)."""
    gaps = []
    for name in members(protocol):
        method = callable(vars(protocol).get(name))
        present = hasattr(obj, name)
        if not present or (method and not callable(getattr(obj, name, None))):
            gaps.append(f"{name}()" if method else name)
    return gaps


def method_key(obj: object, method: str, protocol: type | None = None) -> str | None:
    """The "Protocol.method" key naming ``method`` of ``obj`` registered as ``protocol``
    (None: as whichever hook Protocol ``obj`` satisfies): the hook's Protocol if it
    declares the method, else the capability that does. None when no Protocol does."""
    hooks = [protocol] if protocol is not None else [p for p in HOOK_PROTOCOLS.values() if isinstance(obj, p)]
    for candidate in hooks:
        if method in members(candidate):
            return f"{candidate.__name__}.{method}"
    for capability in CAPABILITIES:
        if method in members(capability) and isinstance(obj, capability):
            return f"{capability.__name__}.{method}"
    return None


def resolve_timeouts(custom: Mapping[str, Any] | None) -> dict[str, float | None]:
    """:data:`DEFAULT_TIMEOUTS` with the user's ``[plugins.timeouts]`` over them.

    A key is "Protocol.method" (``"DocumentLoader.load" = 300``). A bare method name,
    the form before API 1.1 (``search = 60``), sets that method on every Protocol where
    it has a limit (``load = 300`` is ``DocumentLoader.load``: a model's load has none);
    a "Protocol.method" key wins over a bare one. ``import`` and ``hooks`` set the
    host's own limits (:data:`HOST_TIMEOUTS`). A value that is not a number, or a bare
    name no limited method has, is ignored with a warning.
    """
    timeouts = {**DEFAULT_TIMEOUTS, **HOST_TIMEOUTS}
    if not custom:
        return timeouts
    bare = {k: v for k, v in custom.items() if "." not in str(k)}
    qualified = {k: v for k, v in custom.items() if "." in str(k)}
    for key, value in [*bare.items(), *qualified.items()]:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            log.warning("ignoring the time limit %s = %r in config.toml: not a number of seconds", key, value)
            continue
        if "." in str(key) or key in HOST_TIMEOUTS:
            timeouts[str(key)] = seconds
            continue
        keys = [k for k, limit in DEFAULT_TIMEOUTS.items() if limit is not None and k.endswith(f".{key}")]
        if not keys:
            log.warning("ignoring the time limit %s in config.toml: no method of that name has one", key)
        for k in keys:
            timeouts[k] = seconds
    return timeouts
