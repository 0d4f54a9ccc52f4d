"""Cells of nbformat 4 notebooks, as Jupyter writes them, for the tests."""

from __future__ import annotations

from typing import Any


def markdown(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    lines = source.splitlines(keepends=True)  # as Jupyter writes it: a list of lines
    return {"cell_type": "code", "execution_count": None, "metadata": {},
            "source": lines, "outputs": list(outputs)}


def stream(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": [text]}
