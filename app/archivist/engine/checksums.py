"""What a built model folder held when it was built: each file's size and sha256.

The recipes of the built-in models (``archivist_models.default`` and ``.embedder``) record
them in the folder's manifest (``archivist.json``, ``embedder.json``) under ``"files"``.
``archivist models build-default`` then rebuilds a folder whose files no longer match
instead of calling it up to date, and ``archivist doctor`` lists it. Comparing sizes is a
``stat`` per file, cheap enough for every start; comparing sha256 reads every byte (about
a second for the two built-in models), so only those two commands do it.

Standard library only: the recipes and the core both use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FILES_KEY = "files"
"""The manifest key holding ``{name: {"size": bytes, "sha256": hex}}``."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_files(folder: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The size and sha256 of each of ``names`` in ``folder`` (all must exist)."""
    folder = Path(folder)
    return {name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
            for name in sorted(names)}


def file_problems(folder: Path, recorded: Any, *, full: bool = True) -> list[str]:
    """How the files of ``folder`` differ from ``recorded`` (a manifest's ``"files"``),
    one short phrase each; [] when they match. ``full=False`` compares sizes only."""
    folder = Path(folder)
    if not isinstance(recorded, Mapping) or not recorded:
        return ["it has no record of its files (it was built by an older Archivist)"]
    problems: list[str] = []
    for name, expected in sorted(recorded.items()):
        path = folder / str(name)
        if not isinstance(expected, Mapping):
            problems.append(f"the record of {name} is unreadable")
            continue
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if size != expected.get("size"):
            shorter = isinstance(expected.get("size"), int) and size < expected["size"]
            problems.append(f"{name} is {size} bytes instead of {expected.get('size')}"
                            + (" (truncated)" if shorter else ""))
        elif full and file_sha256(path) != expected.get("sha256"):
            problems.append(f"{name} was altered (its sha256 differs from the one recorded when it was built)")
    return problems
