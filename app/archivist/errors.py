"""Errors a user may see. Each carries a message meant to be shown as one clear line."""

from __future__ import annotations

from typing import Any


class ArchivistError(Exception):
    """Base of errors the front ends show as one line, without a traceback."""


class ModelNotFound(ArchivistError):
    """No usable model is installed where one was expected."""


class ModelLoadError(ArchivistError):
    """A model folder exists but the runtime could not load it."""


class ConversionError(ArchivistError):
    """A GGUF file cannot be turned into an ONNX model (corrupt, truncated, unsupported)."""


class UnreadableDocument(ArchivistError):
    """A document that is skipped, with the reason recorded for the user."""


class PluginFailure(ArchivistError):
    """A plugin raised or outlasted its time limit; it has been disabled for this session,
    or, for a call its caller fails closed on (a safety filter's ``screen``), only
    recorded. ``error`` is the :class:`~archivist.types.PluginError` recorded, if any."""

    def __init__(self, message: str, error: Any = None) -> None:
        super().__init__(message)
        self.error = error
