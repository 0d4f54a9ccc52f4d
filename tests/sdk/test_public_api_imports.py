"""Built-in plugins and the template use only the public API: the names in ``archivist.__all__``.

Rule 2 of the house: the FAISS and safety plugins are built like a third party's, so
the day one of them needs a private name, the public API is missing something. Each
module is parsed (not imported), so the check also covers code that only runs lazily.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import archivist

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCES = {
    "archivist_faiss": ROOT / "plugins" / "archivist_faiss",
    "archivist_safety": ROOT / "plugins" / "archivist_safety",
    "archivist_remote": ROOT / "plugins" / "archivist_remote",
    "archivist_team": ROOT / "plugins" / "archivist_team",
    "template": ROOT / "plugins" / "template",
}
PUBLIC = set(archivist.__all__)


def python_files(folder: Path) -> list[Path]:
    skip = {".venv", "build", "dist", "__pycache__"}
    return sorted(
        p for p in folder.rglob("*.py")
        if not skip.intersection(p.relative_to(folder).parts)
        and not any(part.endswith(".egg-info") for part in p.parts)
    )


def private_uses(path: Path) -> list[str]:
    """``file:line: what`` for each import or attribute that reaches past ``__all__``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    found = []
    aliases: set[str] = set()  # local names bound to the archivist package itself
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "archivist":
                    aliases.add(alias.asname or "archivist")
                elif alias.name.startswith("archivist."):
                    found.append(f"{where}:{node.lineno}: import {alias.name} (a private module)")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "archivist":
                for alias in node.names:
                    if alias.name != "*" and alias.name not in PUBLIC:
                        found.append(
                            f"{where}:{node.lineno}: from archivist import {alias.name} "
                            "(not in archivist.__all__)"
                        )
            elif node.module.startswith("archivist."):
                names = ", ".join(a.name for a in node.names)
                found.append(f"{where}:{node.lineno}: from {node.module} import {names} (a private module)")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in PUBLIC
        ):
            found.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr} (not in archivist.__all__)")
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


@pytest.mark.parametrize("plugin", sorted(PLUGIN_SOURCES))
def test_plugin_imports_only_public_names(plugin: str) -> None:
    folder = PLUGIN_SOURCES[plugin]
    files = python_files(folder)
    assert files, f"no Python files under {folder}"
    problems = [p for f in files for p in private_uses(f)]
    assert not problems, (
        f"{plugin} reaches past the public API (add what it needs to archivist.__all__, "
        "or use what is there):\n  " + "\n  ".join(problems)
    )


def test_the_checker_catches_each_kind_of_private_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    source = tmp_path / "plugin.py"
    source.write_text(
        "import archivist\n"
        "import archivist.plugins\n"
        "from archivist import hookimpl, Verdict\n"
        "from archivist import PluginHost\n"
        "from archivist.types import Document\n"
        "from .sibling import thing\n"
        "x = archivist.Document\n"
        "y = archivist.plugins.PluginHost\n",
        encoding="utf-8",
    )
    assert private_uses(source) == [
        "plugin.py:2: import archivist.plugins (a private module)",
        "plugin.py:4: from archivist import PluginHost (not in archivist.__all__)",
        "plugin.py:5: from archivist.types import Document (a private module)",
        "plugin.py:8: archivist.plugins (not in archivist.__all__)",
    ]


def test_every_public_name_exists() -> None:
    missing = [name for name in archivist.__all__ if not hasattr(archivist, name)]
    assert not missing
