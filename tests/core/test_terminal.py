"""Text from documents, models and plugins never drives the terminal it is printed on.

A document holding ``ESC ] 0 ; PWNED BEL ESC [ 2 J`` renamed the terminal's window and
cleared its screen when ``archivist search`` or ``archivist ask`` printed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugin_host import make_distribution

from archivist.terminal import printable

EVIL = "\x1b]0;PWNED\x07\x1b[2J"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J"
ROOT = Path(__file__).resolve().parents[2]


def test_printable_shows_control_characters_and_keeps_the_rest() -> None:
    assert printable(f"a{EVIL}b") == f"a{SHOWN}b"
    assert printable("tab\tnew\nline, é, 中文, emoji 🙂") == "tab\tnew\nline, é, 中文, emoji 🙂"
    assert printable("\x9b2J \u202eevil \r") == "\\x9b2J \\u202eevil \\r"


def no_control(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\x9b")


@pytest.fixture()
def home_with_encoder(home: Path) -> Path:
    from archivist_models.embedder import RECIPE_VERSION, build_embedder

    encoder = build_embedder(ROOT / ".cache" / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}",
                             ROOT / ".cache" / "wheels")
    (home / "models").mkdir(exist_ok=True)
    (home / "models" / "embedder-minilm-l6-v2").symlink_to(encoder, target_is_directory=True)
    return home


def run(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ARCHIVIST_HOME": str(home), "ARCHIVIST_WHEEL_CACHE": str(ROOT / ".cache" / "wheels"),
            **(env or {})}
    result = subprocess.run([sys.executable, "-m", "archivist.cli", *args], capture_output=True, text=True,
                            env=full, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_index_sources_search_and_ask_print_documents_as_text(
    home_with_encoder: Path, default_model_dir: Path, tmp_path: Path
) -> None:
    home = home_with_encoder
    docs = tmp_path / f"docs{EVIL}"
    docs.mkdir()
    (docs / "quimby.txt").write_text(
        f"Quimby is a market town on the river Lune. {EVIL}The Zorblat festival is held there every June.\n",
        encoding="utf-8")
    (docs / f"picture{EVIL}.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not read: listed as skipped
    indexed = run("index", str(docs), home=home)
    assert no_control(indexed.stdout + indexed.stderr), indexed.stdout
    assert f"picture{SHOWN}.png" in indexed.stdout
    listed = run("sources", "list", home=home)
    assert no_control(listed.stdout) and f"docs{SHOWN}" in listed.stdout
    found = run("search", "Zorblat festival in Quimby", home=home)
    assert no_control(found.stdout), found.stdout
    assert SHOWN in found.stdout and f"docs{SHOWN}" in found.stdout
    # --json is JSON: it escapes control characters itself, and is left as it was.
    hits = json.loads(run("search", "Zorblat festival in Quimby", "--json", home=home).stdout)["hits"]
    assert EVIL in hits[0]["text"]
    answered = run("ask", "When is the Zorblat festival in Quimby?", "--max-tokens", "8",
                   "--model", str(default_model_dir), home=home)
    assert no_control(answered.stdout + answered.stderr), answered.stdout
    assert SHOWN in answered.stdout  # the cited (or consulted) passage, shown with its escapes visible


def test_a_plugins_error_message_is_printed_as_text(home: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "tp_evil_error", f'raise RuntimeError("{EVIL.encode("unicode_escape").decode()}")\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listed = run("plugins", "list", home=home, env=env)
    assert no_control(listed.stdout + listed.stderr), listed.stdout
    assert f"RuntimeError: {SHOWN}" in listed.stdout
