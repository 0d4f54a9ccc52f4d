"""The hook reference stays complete: every hook in hookspecs.py has a section."""

from __future__ import annotations

import inspect
from pathlib import Path

from archivist import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin-hooks.md"


def hook_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "archivist_spec")
    ]


def test_every_hook_is_documented_in_plugin_hooks_md() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = hook_names()
    assert len(names) >= 5
    missing = [n for n in names if f"## {n}(" not in text]
    assert not missing, f"hooks missing from {DOC.name}: {missing}"


def test_every_hook_has_a_docstring() -> None:
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
