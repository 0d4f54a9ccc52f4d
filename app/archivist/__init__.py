"""Archivist: a private desktop assistant. This module is the public surface for plugins.

Plugins import only the names in ``__all__``; a test fails when a built-in plugin
reaches past it. Importing this package switches off the telemetry that onnxruntime
and onnxruntime-genai would otherwise record under the user's cache directory: the
variable only works if it is set before they are imported, so it is set here, first.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
# Bumped when a hook or a public type changes incompatibly (see docs/plugin-hooks.md).
API_VERSION = "1.0"

from archivist.errors import (  # noqa: E402
    ArchivistError,
    ConversionError,
    ModelLoadError,
    ModelNotFound,
    PluginFailure,
    UnreadableDocument,
)
from archivist.hookspecs import hookimpl  # noqa: E402
from archivist.protocols import (  # noqa: E402
    DocumentLoader,
    LoadedModel,
    ModelBackend,
    ModelSource,
    Panel,
    Retriever,
    SafetyFilter,
)
from archivist.types import (  # noqa: E402
    Action,
    ChatMessage,
    Citation,
    Document,
    DocumentPart,
    GenerationOptions,
    GenerationStats,
    Locator,
    ModelInfo,
    Passage,
    PluginContext,
    PluginError,
    Span,
    Stage,
    Verdict,
)

__all__ = [
    "API_VERSION",
    "Action",
    "ArchivistError",
    "ChatMessage",
    "Citation",
    "ConversionError",
    "Document",
    "DocumentLoader",
    "DocumentPart",
    "GenerationOptions",
    "GenerationStats",
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
    "Retriever",
    "SafetyFilter",
    "Span",
    "Stage",
    "UnreadableDocument",
    "Verdict",
    "__version__",
    "hookimpl",
]
