"""The core's own plugin: contributes the onnxruntime-genai model backend.

It is registered through the same hook a third-party backend would use, so the host
treats every backend alike (and a user can add another without special cases).
"""

from __future__ import annotations

from collections.abc import Callable

from archivist.hookspecs import hookimpl
from archivist.protocols import ModelBackend


@hookimpl
def register_model_backends(register: Callable[[ModelBackend], None]) -> None:
    from archivist.engine.runtime import GenaiBackend

    register(GenaiBackend())
