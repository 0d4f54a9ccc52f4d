"""A library provided by a third-party plugin drives ``archivist index`` / ``sources`` /
``search`` with the built-in FAISS plugin switched off: the commands render the core's
library service and the retrievers, never a plugin's modules or files (rule 9).

The plugin (``tests/memory_library.py``) is installed as a real distribution with an
``archivist`` entry point, found by the ``archivist`` processes through ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import memory_library
import pytest

from archivist import ArchivistError, hookimpl

ARCHIVIST = [sys.executable, "-m", "archivist.cli"]


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    return memory_library.install(tmp_path / "site")


@pytest.fixture()
def archivist(home: Path, site: Path):
    env = {**os.environ, "ARCHIVIST_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    def run(*args: object, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ARCHIVIST, *(str(a) for a in args)], capture_output=True, text=True,
                              timeout=300, env={**env, **extra_env})

    return run


@pytest.fixture()
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text("The Cape Wren lighthouse was built in 1871 from local granite.\n\n"
                                           "Its lamp can be seen 22 nautical miles out to sea.\n")
    (folder / "garden.md").write_text("# Garden\n\nSow the tomato seeds indoors in March.\n")
    (folder / "empty.txt").write_text("")
    return folder


def test_the_commands_drive_a_plugins_library_with_faiss_switched_off(archivist, notes: Path, home: Path) -> None:
    assert archivist("plugins", "disable", "faiss").returncode == 0
    listed = {p["name"]: p for p in json.loads(archivist("plugins", "list", "--json").stdout)}
    assert listed["memory"]["origin"] == "third-party" and listed["faiss"]["disabled_by_user"]

    out = archivist("index", notes, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] == [str(notes / "lighthouse.txt")] and report["passages"] == 2
    assert {Path(s["path"]).name: s["reason"] for s in report["skipped"]} == {
        "empty.txt": "empty file (0 bytes)", "garden.md": "unsupported file type '.md'"}

    out = archivist("index", notes)
    assert out.returncode == 0, out.stderr
    assert "0 indexed (0 pages, 0 passages), 3 unchanged, 0 removed, 2 skipped" in out.stdout
    assert "skipped 1 .md file, a type Archivist does not read: garden.md" in out.stdout

    out = archivist("sources", "list", "--json")
    assert out.returncode == 0, out.stderr
    [source] = json.loads(out.stdout)
    assert (source["path"], source["files"], source["skipped"], source["passages"]) == (str(notes), 1, 2, 2)

    out = archivist("search", "When was the lighthouse built?", "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["path"] == str(notes / "lighthouse.txt") and "1871" in hits[0]["text"]

    out = archivist("sources", "remove", notes)
    assert out.returncode == 0 and out.stdout.strip() == f"removed {notes} (3 files)", out.stderr
    assert json.loads(archivist("sources", "list", "--json").stdout) == []
    assert not (home / "plugins" / "faiss").exists()  # the FAISS plugin was never touched


def test_without_any_library_index_and_sources_say_why_and_fail(archivist, notes: Path) -> None:
    for args in (("index", notes), ("sources", "list"), ("sources", "remove", notes)):
        out = archivist(*args, ARCHIVIST_PLUGINS="safety")  # neither faiss nor memory loads
        assert out.returncode == 1 and "Traceback" not in out.stderr
        [line] = out.stderr.strip().splitlines()
        assert line.startswith("error: Document search is ") and "library" in line


def test_a_plugins_library_comes_before_the_built_in_one(home: Path, site: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook order: the later-registered (third-party) plugin's library is the one in use."""
    from archivist.application import Application

    monkeypatch.syspath_prepend(str(site))
    app = Application(home)
    try:
        assert [c.plugin for c in app.host.libraries()] == ["memory", "faiss"]
        assert app.library.name == "memory" and app.library.problem() == ""
    finally:
        app.close()


class BrokenLibrary:
    """A library whose every reading fails (a bug in a plugin)."""

    name = "broken"

    def sources(self):
        raise RuntimeError("the disk is on fire")

    def add_source(self, path):
        raise RuntimeError("the disk is on fire")

    def remove_source(self, path):
        raise RuntimeError("the disk is on fire")

    def sync(self, roots=None, progress=None, cancel=None):
        raise RuntimeError("the disk is on fire")

    def skipped(self):
        return []

    def count(self):
        return 0


class BrokenPlugin:
    @hookimpl
    def register_libraries(self, register):
        register(BrokenLibrary())


def test_a_library_that_raises_is_disabled_and_the_next_one_is_used(home: Path) -> None:
    from archivist.application import Application

    app = Application(home)
    try:
        app.host.add("broken", BrokenPlugin())
        assert app.library.name == "broken"
        assert not app.library.has_sources()  # what the window asks at start-up: no crash
        assert not app.host.enabled("broken") and "the disk is on fire" in app.host.errors[-1].message
        assert app.library.name == "faiss"  # the next library in hook order takes over
        app.host.records["faiss"].enabled = False
        assert not app.library.available
        assert app.library.sources() == [] and app.library.count() == 0
        with pytest.raises(ArchivistError, match="Document search is off: the plugin “faiss”"):
            app.library.sync()
    finally:
        app.close()
