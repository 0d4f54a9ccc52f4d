"""Notebook files for the tests. Archivist's own fixtures (``archivist_host``,
``archivist_home``, ``archivist_cli``, ...) need no import: Archivist ships them as a
pytest plugin, active wherever Archivist is installed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture()
def write_notebook(tmp_path: Path) -> Callable[..., Path]:
    """Write a nbformat 4 notebook with these cells; returns its path."""

    def write(*cells: dict[str, Any], name: str = "analysis.ipynb", **metadata: Any) -> Path:
        path = tmp_path / name
        notebook = {"cells": list(cells), "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
        path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        return path

    return write
