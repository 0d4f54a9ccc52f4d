"""The hook reference stays complete and true: every hook in hookspecs.py has a section
headed with its full signature (as datasette's tests/test_docs.py checks), every
optional capability is documented, and the time-limit table is the host's."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import archivist
from archivist import hookspecs
from archivist.contract import CAPABILITIES, DEFAULT_TIMEOUTS

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "plugin-hooks.md"
README = DOCS.parent / "README.md"
# "## register_loaders(register, context)": a hook's heading, with its arguments.
HEADING = re.compile(r"^## (?P<name>\w+)\((?P<args>[^)]*)\)\s*$", re.MULTILINE)


def hook_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "archivist_spec")
    ]


def documented() -> dict[str, list[str]]:
    text = DOC.read_text(encoding="utf-8")
    return {m["name"]: [a.strip() for a in m["args"].split(",") if a.strip()] for m in HEADING.finditer(text)}


def test_every_hook_is_documented_in_plugin_hooks_md() -> None:
    names = hook_names()
    assert len(names) >= 7
    missing = [n for n in names if n not in documented()]
    assert not missing, f"hooks missing from {DOC.name}: {missing}"


@pytest.mark.parametrize("name", hook_names())
def test_each_hook_is_documented_with_its_full_signature(name: str) -> None:
    wanted = list(inspect.signature(getattr(hookspecs, name)).parameters)
    assert documented().get(name) == wanted, f"document it as: ## {name}({', '.join(wanted)})"


def test_every_documented_hook_exists() -> None:
    assert set(documented()) <= set(hook_names())


def test_every_hook_has_a_docstring() -> None:
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_every_optional_capability_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Optional capabilities", 1)[1].split("\n## ", 1)[0]
    for protocol in (*CAPABILITIES, archivist.AsideModel):
        assert f"`{protocol.__name__}`" in section, protocol.__name__


def test_the_time_limit_table_is_the_hosts() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Time limits", 1)[1].split("\n## ", 1)[0]
    cells = dict(re.findall(r"`(\w+\.\w+)` \| (none|[\d.]+ s)", section))
    assert cells == {key: "none" if limit is None else f"{limit:g} s" for key, limit in DEFAULT_TIMEOUTS.items()}


def test_the_changelog_covers_this_api_version_and_is_linked_from_the_readme() -> None:
    changelog = (DOCS / "changelog.md").read_text(encoding="utf-8")
    assert f"\n## {archivist.API_VERSION}\n" in changelog
    for name in ("register_libraries", "ask_model", "AsideModel", "ModelSource", "Citation.cited",
                 "Countable", "Closable", "wrapper=True", "Protocol.method", "pathlib.Path"):
        assert name in changelog, name
    assert "docs/changelog.md" in README.read_text(encoding="utf-8")
