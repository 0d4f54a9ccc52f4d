"""Plugins that hang: at import, in a hook, in ``register_commands``. The app gives up
waiting, disables that plugin with a clear error and goes on; ``archivist plugins
disable NAME`` never loads a plugin at all, in safe mode too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_plugin_host import Named, make_distribution

from archivist import hookimpl
from archivist.context import PluginContext
from archivist.plugins import PluginHost

HANGS_AT_IMPORT = """
import time
time.sleep(3600)
"""

HANGS_IN_REGISTER_COMMANDS = """
import time
from archivist import hookimpl

@hookimpl
def register_commands(cli, context):
    time.sleep(3600)
"""

HANGS_IN_REGISTER_RETRIEVERS = """
import time
from archivist import hookimpl

@hookimpl
def register_retrievers(register, context):
    time.sleep(3600)
"""


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("tp_hang_import", "tp_hang_commands", "tp_hang_register"):
        sys.modules.pop(name, None)


def cli(*args: str, home: Path, site: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real ``archivist`` in a child, with the distributions in ``site`` installed."""
    env = {**os.environ, "ARCHIVIST_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "archivist.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def short_limits(home: Path) -> None:
    (home / "config.toml").write_text('[plugins.timeouts]\nimport = 2\nhooks = 2\n', encoding="utf-8")


# -- in process ---------------------------------------------------------------------------

def test_a_plugin_whose_import_hangs_is_given_up_and_recorded(tmp_path: Path, site: Path) -> None:
    make_distribution(site, "tp_hang_import", HANGS_AT_IMPORT)
    started = time.monotonic()
    h = PluginHost(PluginContext(home=tmp_path), timeouts={"import": 0.5})
    assert time.monotonic() - started < 20
    record = h.records["tp_hang_import"]
    assert not record.enabled
    assert "did not finish within 0.5 s" in record.errors[0].message
    assert "archivist plugins disable tp_hang_import" in record.errors[0].message
    assert h.enabled("safety") and h.enabled("faiss")  # the others load


def test_a_hook_that_hangs_is_given_up_and_its_late_registrations_ignored(tmp_path: Path) -> None:
    release = threading.Event()

    class Sleepy:
        @hookimpl
        def register_retrievers(self, register, context):
            release.wait(30)
            register(Named("late"))  # after the host gave up: must not count

    class Prompt:
        @hookimpl
        def register_retrievers(self, register, context):
            register(Named("prompt"))

    h = PluginHost(PluginContext(home=tmp_path), load_entry_points=False, timeouts={"hooks": 0.3})
    h.add("prompt", Prompt())
    h.add("sleepy", Sleepy())  # registered last: called first
    assert [c.obj.name for c in h.retrievers()] == ["prompt"]
    assert not h.enabled("sleepy")
    assert h.records["sleepy"].errors[0].where == "register_retrievers"
    assert "gave up after 0.3 s" in h.records["sleepy"].errors[0].message
    release.set()
    time.sleep(0.2)
    assert [c.obj.name for c in h.retrievers()] == ["prompt"]


def test_a_hook_may_ask_for_another_hooks_contributions_while_registering(tmp_path: Path) -> None:
    """Hooks run on a guard thread now; asking the host from there must not deadlock."""
    seen = []

    class Asks:
        @hookimpl
        def register_libraries(self, register, context):
            seen.append(len(context.loaders()))

    h = PluginHost(PluginContext(home=tmp_path), load_entry_points=False, timeouts={"hooks": 5})
    h.add("asks", Asks())
    h.libraries()
    assert seen == [0] and h.enabled("asks")


# -- the real command line ----------------------------------------------------------------

def test_plugins_disable_never_imports_the_plugin(home: Path, site: Path) -> None:
    """A plugin that hangs at import: disabling it must not wait for it, in safe mode
    neither, where third-party plugins are not even loaded (it said "no such plugin")."""
    make_distribution(site, "tp_hang_import", HANGS_AT_IMPORT)
    done = cli("plugins", "disable", "tp_hang_import", home=home, site=site)
    assert done.returncode == 0, done.stderr
    assert "tp_hang_import disabled" in done.stdout
    assert json.loads((home / "plugins.json").read_text())["disabled"] == ["tp_hang_import"]
    back = cli("--safe-mode", "plugins", "enable", "tp_hang_import", home=home, site=site)
    assert back.returncode == 0, back.stderr
    assert json.loads((home / "plugins.json").read_text())["disabled"] == []
    again = cli("--safe-mode", "plugins", "disable", "tp_hang_import", home=home, site=site)
    assert again.returncode == 0, again.stderr
    unknown = cli("plugins", "disable", "no_such_plugin", home=home, site=site)
    assert unknown.returncode == 1 and "no plugin called 'no_such_plugin'" in unknown.stderr
    core = cli("plugins", "disable", "archivist.engine.backend", home=home, site=site)
    assert core.returncode == 1 and "core" in core.stderr
    listed = cli("plugins", "list", "--json", home=home, site=site)  # disabled: never imported
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "tp_hang_import")
    assert row["disabled_by_user"] and not row["enabled"]


def test_a_plugin_hanging_at_import_does_not_hang_the_app(home: Path, site: Path) -> None:
    make_distribution(site, "tp_hang_import", HANGS_AT_IMPORT)
    short_limits(home)
    listed = cli("plugins", "list", "--json", home=home, site=site)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "tp_hang_import")
    assert not row["enabled"] and "did not finish within 2 s" in row["errors"][0]["message"]
    assert next(r for r in json.loads(listed.stdout) if r["name"] == "safety")["enabled"]


@pytest.mark.parametrize("source,name,where", [
    (HANGS_IN_REGISTER_COMMANDS, "tp_hang_commands", "register_commands"),
    (HANGS_IN_REGISTER_RETRIEVERS, "tp_hang_register", "register_retrievers"),
])
def test_a_plugin_hanging_in_a_hook_is_disabled_with_the_reason(home: Path, site: Path, source: str, name: str,
                                                                 where: str) -> None:
    make_distribution(site, name, source)
    short_limits(home)
    listed = cli("plugins", "list", "--json", home=home, site=site)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == name)
    assert not row["enabled"]
    assert (row["errors"][0]["where"], row["errors"][0]["message"]) == (where, "PluginTimeout: gave up after 2 s without an answer")
    assert f"plugin {name} failed ({where}) and is off for this session" in listed.stderr
