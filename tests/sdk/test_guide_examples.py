"""Every example in docs/plugins.md is real code: extracted, laid out as a plugin project, tested.

An example is a fenced block right after ``<!-- example: PATH -->``; blocks naming the
same PATH are joined in order (the guide grows a module across sections). The project
is tested as its author would test it, with Archivist's fixtures, in a fresh pytest.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from author_pytest import ROOT, run_pytest

from archivist import hookspecs

GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = re.compile(r"^<!-- example: (?P<path>\S+) -->\n```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^```(\w*)$", re.MULTILINE)


def examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for match in EXAMPLE.finditer(GUIDE.read_text(encoding="utf-8")):
        path, code = match["path"], match["code"]
        found[path] = found[path] + "\n\n" + code if path in found else code
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guide-project")
    for path, code in examples().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
    return root


def test_the_guide_has_examples_for_every_hook_and_their_tests() -> None:
    found = examples()
    modules = {p: c for p, c in found.items() if p.startswith("src/") and p.endswith(".py")}
    tests = [p for p in found if p.startswith("tests/test_")]
    assert len(modules) >= 5 and len(tests) >= 6, sorted(found)
    implemented = {
        node.name
        for code in modules.values()
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "hookimpl" for d in node.decorator_list)
    }
    specs = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "archivist_spec")}
    assert specs <= implemented, f"hooks without a worked example in the guide: {sorted(specs - implemented)}"


def test_every_python_block_in_the_guide_is_a_tested_example() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    python_blocks = [m for m in FENCE.finditer(text) if m.group(1) == "python"]
    assert len(python_blocks) == sum(1 for m in EXAMPLE.finditer(text) if m["lang"] == "python")


def test_every_example_module_sets_the_api_version_archivist_provides() -> None:
    import archivist

    for path, code in examples().items():
        if path.startswith("src/") and path.endswith("__init__.py"):
            assert f'ARCHIVIST_API_VERSION = "{archivist.API_VERSION}"' in code, path


def test_the_example_pyproject_declares_the_entry_point(project: Path) -> None:
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["name"].startswith("archivist-")
    assert "archivist" in " ".join(data["project"]["dependencies"])
    for name, module in data["project"]["entry-points"]["archivist"].items():
        assert (project / "src" / module / "__init__.py").is_file(), (name, module)


def test_the_examples_pass_their_own_tests(project: Path) -> None:
    from archivist.testing import LibraryContract

    result, outcomes = run_pytest(project / "tests", env={"PYTHONPATH": str(project / "src")})
    tests = [code for path, code in examples().items() if path.startswith("tests/")]
    # The shelf's tests inherit the library contract's: the optional-capability ones
    # (watching, close) skip for a library that does not offer them, as they should.
    contract = [n for n in dir(LibraryContract) if n.startswith("test_")]
    optional = {"test_watching_syncs_a_changed_file_soon_after", "test_a_closed_library_opens_again_when_used"}
    expected = sum(code.count("\ndef test_") + code.startswith("def test_") for code in tests)
    expected += len(contract) * sum(code.count("(LibraryContract)") for code in tests)
    wrong = {name: outcome for name, outcome in outcomes.items()
             if outcome != "passed" and not (name in optional and outcome == "skipped")}
    assert outcomes and not wrong, result.stdout[-6000:] + result.stderr[-3000:]
    assert len(outcomes) == expected, sorted(outcomes)
