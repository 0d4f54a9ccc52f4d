"""Archivist: a private desktop assistant. This module is the public surface for plugins.

Plugins import only the names in ``__all__``; a test fails when a built-in plugin
reaches past it. Importing this package switches off the telemetry that onnxruntime
and onnxruntime-genai would otherwise record under the user's cache directory: the
variable only works if it is set before they are imported, so it is set here, first.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
# The plugin API's version: the minor part grows when something is added, the major part
# when something changes incompatibly (docs/changelog.md says what each version did).
API_VERSION = "1.2"

from archivist.context import PluginContext  # noqa: E402
from archivist.errors import (  # noqa: E402
    ArchivistError,
    ConversionError,
    ModelLoadError,
    ModelNotFound,
    PluginFailure,
    UnreadableDocument,
)
from archivist.hookspecs import hookimpl  # noqa: E402
from archivist.passage_headers import holds_lead, passage_header, passage_meta  # noqa: E402
from archivist.protocols import (  # noqa: E402
    AsideModel,
    Closable,
    Countable,
    DocumentLoader,
    Library,
    LoadedModel,
    ModelBackend,
    ModelSource,
    Panel,
    Repairable,
    Retriever,
    SafetyFilter,
    SharedCollection,
    WatchesSources,
    Watching,
    Writable,
)
from archivist.ranking import (  # noqa: E402
    MAX_NAMED_FILES,
    content_query,
    fuse,
    identifiers,
    named_first,
)
from archivist.types import (  # noqa: E402
    Action,
    ChatMessage,
    Citation,
    Document,
    DocumentPart,
    GenerationOptions,
    GenerationStats,
    LibrarySource,
    Locator,
    ModelInfo,
    Passage,
    PluginError,
    SkippedFile,
    Span,
    Stage,
    SyncProgress,
    SyncReport,
    Verdict,
)

if TYPE_CHECKING:  # (collect_loaders is left out: the assistant may not reach the application)
    from archivist.child_process import Channel, ChildEnded, ChildProcess, limit_memory

# Imported when first asked for: importing them costs as much as everything above
# (multiprocessing; the plugin host), and only a plugin that reads in a child needs them.
_LAZY = {
    "Channel": "archivist.child_process",
    "ChildEnded": "archivist.child_process",
    "ChildProcess": "archivist.child_process",
    "limit_memory": "archivist.child_process",
    "collect_loaders": "archivist.application",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archivist' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "API_VERSION",
    "MAX_NAMED_FILES",
    "Action",
    "ArchivistError",
    "AsideModel",
    "Channel",
    "ChatMessage",
    "ChildEnded",
    "ChildProcess",
    "Citation",
    "Closable",
    "ConversionError",
    "Countable",
    "Document",
    "DocumentLoader",
    "DocumentPart",
    "GenerationOptions",
    "GenerationStats",
    "Library",
    "LibrarySource",
    "LoadedModel",
    "Locator",
    "ModelBackend",
    "ModelInfo",
    "ModelLoadError",
    "ModelNotFound",
    "ModelSource",
    "Panel",
    "Passage",
    "PluginContext",
    "PluginError",
    "PluginFailure",
    "Repairable",
    "Retriever",
    "SafetyFilter",
    "SharedCollection",
    "SkippedFile",
    "Span",
    "Stage",
    "SyncProgress",
    "SyncReport",
    "UnreadableDocument",
    "Verdict",
    "WatchesSources",
    "Watching",
    "Writable",
    "__version__",
    "collect_loaders",
    "content_query",
    "fuse",
    "holds_lead",
    "hookimpl",
    "identifiers",
    "limit_memory",
    "named_first",
    "passage_header",
    "passage_meta",
]
