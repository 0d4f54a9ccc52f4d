"""Gone is gone (issue #13): a source whose folder or file was deleted is shown as
missing, its passages are never cited, and ``archivist sources prune`` (or the Library
page's "Remove missing…") forgets it. Real FAISS, real SQLite, the real encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from archivist.application import Application
from archivist.cli import State, cli


@pytest.fixture()
def invoke(faiss_home: Path):
    app = Application(faiss_home)
    state = State(app)
    yield lambda *args: CliRunner().invoke(cli, [str(a) for a in args], obj=state)
    app.library.close()
    app.close()


def folders(tmp_path: Path) -> tuple[Path, Path]:
    kept, doomed = tmp_path / "kept", tmp_path / "doomed"
    kept.mkdir()
    doomed.mkdir()
    (kept / "lighthouse.txt").write_text("The Cape Wren lighthouse was built in 1871 from local granite.\n")
    (kept / "ferry.txt").write_text("The ferry to Cape Wren leaves at seven; the lighthouse keeper rides it.\n")
    (doomed / "lighthouse-notes.txt").write_text("Notes on the Cape Wren lighthouse: its granite came by ferry.\n")
    return kept, doomed


def cited(invoke, query: str) -> list[str]:
    r = invoke("search", query, "-k", "5", "--json")
    assert r.exit_code == 0, r.output
    return [h["path"] for h in json.loads(r.stdout)["hits"]]


def test_a_deleted_folder_is_missing_never_cited_and_pruned(tmp_path, invoke):
    kept, doomed = folders(tmp_path)
    single = tmp_path / "single.txt"
    single.write_text("A single file about the Cape Wren lighthouse and its granite tower.\n")
    for path in (kept, doomed, single):
        assert invoke("index", path, "--json").exit_code == 0
    before = cited(invoke, "Cape Wren lighthouse granite")
    assert str(doomed / "lighthouse-notes.txt") in before and str(single) in before

    shutil.rmtree(doomed)
    single.unlink()
    (kept / "ferry.txt").unlink()  # a file gone from a folder that is still there, before any sync
    after = cited(invoke, "Cape Wren lighthouse granite")
    assert after == [str(kept / "lighthouse.txt")]

    rows = {r["path"]: r for r in json.loads(invoke("sources", "list", "--json").stdout)}
    assert {p: r["missing"] for p, r in rows.items()} == {str(kept): False, str(doomed): True, str(single): True}
    text = invoke("sources", "list").stdout
    assert f"{doomed}  1 files" in text and "MISSING" in text.split(str(doomed))[1].splitlines()[0]
    assert "MISSING" not in text.split(str(kept))[1].splitlines()[0]

    r = invoke("sources", "prune", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"removed": [{"path": str(doomed), "files": 1}, {"path": str(single), "files": 1}]}
    assert [r["path"] for r in json.loads(invoke("sources", "list", "--json").stdout)] == [str(kept)]
    r = invoke("sources", "prune")
    assert r.exit_code == 0 and "no missing sources" in r.stdout

    # The folder comes back (a remounted drive): it is an ordinary folder to add again.
    doomed.mkdir()
    (doomed / "lighthouse-notes.txt").write_text("Notes on the Cape Wren lighthouse: its granite came by ferry.\n")
    assert invoke("index", doomed, "--json").exit_code == 0
    assert str(doomed / "lighthouse-notes.txt") in cited(invoke, "Cape Wren lighthouse granite")


def test_gone_files_give_their_places_to_the_next_passages(tmp_path, make_index):
    """k passages are still returned when the best ones are from deleted files."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(8):
        (docs / f"keeper-{n}.txt").write_text(f"Lighthouse keeper number {n} kept the lamp of Cape Wren lit.\n")
    ix = make_index(isolate=False)
    ix.index([docs])
    first = [h.path for h in ix.search("lighthouse keeper lamp Cape Wren", k=3)]
    for path in first:
        Path(path).unlink()
    again = [h.path for h in ix.search("lighthouse keeper lamp Cape Wren", k=3)]
    assert len(again) == 3 and not set(again) & set(first)
    for mode in ("dense", "keyword"):
        assert not {h.path for h in ix.search("lighthouse keeper lamp", k=8, mode=mode)} & set(first)


def test_a_name_that_is_not_utf8_is_still_cited(tmp_path, make_index):
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    name = os.path.join(os.fsencode(docs), b"caf\xe9-lighthouse.txt")
    with open(name, "w") as f:
        f.write("The lighthouse caf\u00e9 sells granite souvenirs to ferry passengers.\n")
    ix = make_index(isolate=False)
    ix.index([docs])
    hits = ix.search("lighthouse granite souvenirs", k=1)
    assert hits and hits[0].path.endswith("caf\\xe9-lighthouse.txt")
