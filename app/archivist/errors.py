"""Errors a user may see. Each carries a message meant to be shown as one clear line."""

from __future__ import annotations


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
    """A plugin raised; it has been disabled for this session."""
