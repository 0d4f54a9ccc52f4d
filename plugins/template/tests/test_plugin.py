"""The installed distribution, seen from the outside: Archivist's command line finds it."""

from __future__ import annotations

import json

from cells import code, markdown

import archivist
import archivist_notebooks


def test_the_plugin_declares_an_api_version_archivist_provides() -> None:
    wanted = archivist_notebooks.ARCHIVIST_API_VERSION.split(".")
    have = archivist.API_VERSION.split(".")
    assert wanted[0] == have[0] and int(wanted[1]) <= int(have[1])


def test_archivist_lists_it_as_a_third_party_plugin(archivist_cli) -> None:
    result = archivist_cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    row = rows["notebooks"]
    assert row["origin"] == "third-party"
    assert row["version"] == archivist_notebooks.__version__
    assert row["enabled"] and not row["errors"]
    assert {"register_loaders", "register_commands"} <= set(row["hooks"])


def test_stats_runs_through_the_real_archivist_command(archivist_cli, write_notebook) -> None:
    path = write_notebook(
        markdown("# Notes\n\nThree words here."),
        code("a = 1\n\nb = 2\nprint(a + b)", {"output_type": "stream", "name": "stdout", "text": "3\n"}),
        code("c = 3"),
        {"cell_type": "raw", "metadata": {}, "source": ""},
    )
    result = archivist_cli("notebooks", "stats", path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "file": str(path), "cells": 4, "markdown_cells": 1, "code_cells": 2, "other_cells": 1,
        "words": 4, "code_lines": 4, "outputs": 1,
    }
    text = archivist_cli("notebooks", "stats", path)
    assert text.returncode == 0, text.stderr
    assert "code lines  4" in text.stdout


def test_stats_on_a_broken_file_is_one_clear_line(archivist_cli, tmp_path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{", encoding="utf-8")
    result = archivist_cli("notebooks", "stats", path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: not a notebook: invalid JSON at line 1, column 2")


def test_safe_mode_leaves_the_plugin_out(archivist_cli, write_notebook) -> None:
    result = archivist_cli("--safe-mode", "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert "notebooks" not in {row["name"] for row in json.loads(result.stdout)}
    missing = archivist_cli("--safe-mode", "notebooks", "stats", write_notebook(code("x = 1")))
    assert missing.returncode == 2
    assert "No such command 'notebooks'" in missing.stderr


def test_the_application_loads_it_from_its_entry_point(archivist_app, archivist_sample_docs) -> None:
    """The app a user starts (default model, built-in plugins) has the notebook loader."""
    record = archivist_app.host.records["notebooks"]
    assert record.origin == "third-party" and record.enabled
    [loader] = [c for c in archivist_app.host.loaders() if c.plugin == "notebooks"]
    doc = archivist_app.host.run(loader, "load", archivist_sample_docs / "tides.ipynb")
    assert doc.title == "Tide tables"
    assert "4.2 metres" in doc.text
