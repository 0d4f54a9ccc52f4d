"""``archivist collections`` end to end on a real server: add (password to the keychain),
list, index the shared format samples, search them with citations, index again, remove."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from archivist_team import connection, keychain

BIG = "DA-619p.pdf"
FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "formats"


@pytest.mark.timeout(1200)  # about 1,000 passages to embed: 3.5 min on a contended 2-core machine
def test_a_collection_from_add_to_search(pg_server, pg_database, team_home: Path, keyring_file: Path,
                                         team_cli, tmp_path: Path) -> None:
    if not FORMATS.is_dir():
        pytest.skip(f"{FORMATS} is absent (the shared test data is not checked out beside the repo)")
    # Every sample but the 600-page PDF, whose 2,700 passages take minutes to embed on a
    # small CI machine (the benchmark indexes it); copied, so the test owns the folder.
    samples = tmp_path / "formats"
    samples.mkdir()
    for file in FORMATS.iterdir():
        if file.is_file() and file.name != BIG:
            shutil.copy2(file, samples / file.name)
    url = pg_server.url(database=pg_database)
    created = team_cli("collections", "add", "formats", url, "--create")
    assert created.returncode == 0, created.stderr
    assert "password in the keychain" in created.stdout
    assert "admin-secret" not in (team_home / "plugins" / "team" / "collections.json").read_text()
    folder = team_home / "plugins" / "team"
    assert keychain.load(folder, "formats") == "admin-secret"  # (the test's file keyring; a user's is the OS keychain)

    listed = team_cli("collections", "list", "--check", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["passages"], row["status"]) == ("formats", 0, "ok") and "admin-secret" not in row["url"]

    first = team_cli("collections", "index", "formats", samples, "--json", timeout=900)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    files = sorted(str(p.resolve()) for p in samples.iterdir())
    assert sorted(report["indexed"] + [s["path"] for s in report["skipped"]]) == files
    assert len(report["indexed"]) >= 30 and report["passages"] > 100
    assert all(s["reason"].strip() for s in report["skipped"])

    again = team_cli("collections", "index", "formats", samples, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["indexed"] == [] and json.loads(again.stdout)["unchanged"] == len(report["indexed"])

    found = team_cli("collections", "search", "formats", "Universal Declaration of Human Rights free and equal "
                     "in dignity", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and any("dignity" in h["text"] for h in hits)
    for hit in hits:
        assert Path(hit["path"]).is_file() and hit["locator"]["end"] > hit["locator"]["start"]

    pdf = team_cli("collections", "search", "formats", "LayoutParser document image analysis", "--json")
    pages = [h["locator"]["page"] for h in json.loads(pdf.stdout) if h["path"].endswith(".pdf")]
    assert pages and all(isinstance(p, int) and p >= 1 for p in pages)

    removed = team_cli("collections", "remove", "formats")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(team_cli("collections", "list", "--json").stdout) == []
    assert keychain.load(folder, "formats") is None


def test_without_the_team_extra_the_plugin_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(connection.MissingPackages, match=r"pip install 'archivist\[team\]'"):
        connection.require()


def test_urls_keep_no_password() -> None:
    plain, password = connection.split_password("postgresql://ann:s%40cret@db.example:5433/docs?sslmode=verify-full")
    assert (plain, password) == ("postgresql://ann@db.example:5433/docs?sslmode=verify-full", "s@cret")
    assert connection.redacted("postgresql://ann:pw@h/d") == "postgresql://ann:***@h/d"
