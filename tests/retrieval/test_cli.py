"""``archivist index``, ``search`` and ``sources`` over the FAISS library: through click on a
real application, and once through the real entry point. (The same commands over a
library another plugin provides: ``tests/sdk/test_library_plugin.py``.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archivist import ArchivistError, SkippedFile, SyncReport
from archivist.application import Application
from archivist.cli import State, cli
from archivist.library import summary_line
from archivist.library_commands import item_label, skipped_lines

from .conftest import formats_dir


@pytest.fixture()
def invoke(faiss_home: Path):
    """``archivist ARGS`` through click on an application in ``faiss_home``."""
    app = Application(faiss_home)
    state = State(app)
    yield lambda *args: CliRunner().invoke(cli, [str(a) for a in args], obj=state)
    app.library.close()
    app.close()


def docs_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in ("fake-memo.pdf", "eng_spa_mult.docx", "password.pdf"):
        shutil.copy(formats_dir() / n, docs / n)
    return docs


def test_index_search_sources(tmp_path, invoke):
    docs = docs_folder(tmp_path)
    r = invoke("index", docs, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(summary["indexed"]) == 2 and summary["passages"] >= 2 and summary["cancelled"] is False
    assert summary["skipped"] == [{"path": str(docs / "password.pdf"), "reason": "encrypted PDF (a password is needed)"}]

    r = invoke("index", docs)
    assert r.exit_code == 0 and "3 unchanged" in r.stdout, r.output
    assert "password.pdf: encrypted" in r.stdout

    r = invoke("search", "how many bottles were there", "-k", "2", "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)["hits"]
    assert 1 <= len(hits) <= 2
    assert set(hits[0]) >= {"path", "page", "start", "end", "text", "score", "title", "section", "chunk_id"}
    assert hits[0]["path"].endswith("fake-memo.pdf") and hits[0]["page"] == 1

    r = invoke("search", "bottles")
    assert r.exit_code == 0 and "fake-memo.pdf p.1" in r.stdout

    queries = tmp_path / "q.jsonl"
    queries.write_text('"how many bottles"\n{"query": "seres humanos libres", "id": 7}\n')
    r = invoke("search", "--jsonl", queries, "-k", "1")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["query"] for x in lines] == ["how many bottles", "seres humanos libres"]
    assert lines[1]["hits"][0]["path"].endswith("eng_spa_mult.docx")

    r = invoke("sources", "list", "--json")
    rows = json.loads(r.stdout)
    assert rows[0]["path"] == str(docs) and rows[0]["files"] == 2 and rows[0]["skipped"] == 1
    assert rows[0]["passages"] >= 2 and rows[0]["added_at"]
    r = invoke("sources", "list")
    assert f"{docs}  2 files, {rows[0]['passages']} passages, 1 skipped" in r.stdout

    r = invoke("sources", "remove", docs, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"removed": str(docs), "files": 3}
    r = invoke("sources", "remove", docs)
    assert isinstance(r.exception, ArchivistError) and "not a source" in str(r.exception)
    r = invoke("search", "bottles", "--json")
    assert json.loads(r.stdout)["hits"] == []
    r = invoke("search", "bottles")
    assert "nothing is indexed yet" in r.stdout


def test_usage_errors(invoke):
    r = invoke("search")
    assert r.exit_code == 2 and "QUERY" in r.output
    r = invoke("search", "bottles", "-k", "0")
    assert r.exit_code == 2 and "-k" in r.output and "x>=1" in r.output


def test_real_entry_point(tmp_path, faiss_home):
    docs = docs_folder(tmp_path)
    env = dict(os.environ, ARCHIVIST_HOME=str(faiss_home))
    exe = [sys.executable, "-m", "archivist.cli"] if not shutil.which("archivist") else [shutil.which("archivist")]
    out = subprocess.run(exe + ["index", str(docs), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout.strip().splitlines()[-1])["indexed"]) == 2
    out = subprocess.run(exe + ["search", "--jsonl", "-", "-k", "1"], input='"bottles"\n', env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hits"][0]["path"].endswith("fake-memo.pdf")
    # With the library's plugin switched off, `index` and `sources` say why in one line.
    subprocess.run(exe + ["plugins", "disable", "faiss"], env=env, capture_output=True, text=True, check=True)
    for args in (["index", str(docs)], ["sources", "list"]):
        out = subprocess.run(exe + args, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines() == [
            "error: Document search is off: the plugin “faiss”, which provides the library, is disabled "
            "(you switched it off). Switch it on in Plugins and restart Archivist to index folders; "
            "until then answers come from the model alone."]


def test_files_of_an_unread_type_are_summed_up_per_type_and_problems_listed_one_by_one() -> None:
    skipped = [SkippedFile(f"/d/shot{i}.png", "unsupported file type '.png'") for i in range(5)]
    skipped += [SkippedFile("/d/password.pdf", "encrypted PDF (a password is needed)"),
                SkippedFile("/d/a.bin", "unsupported file type '.bin'")]
    assert skipped_lines(skipped) == [
        "  skipped /d/password.pdf: encrypted PDF (a password is needed)",
        "  skipped 5 .png files, a type Archivist does not read: shot0.png, shot1.png, shot2.png and 2 more",
        "  skipped 1 .bin file, a type Archivist does not read: a.bin",
    ]


def test_progress_bar_names_the_file_and_how_far_a_big_one_is_embedded() -> None:
    assert item_label(None) == "" and item_label("/docs/a.pdf") == "a.pdf"
    assert item_label("/docs/report.pdf\x0045%") == "report.pdf (45% embedded, searchable by keyword)"


def test_the_summary_says_what_a_sync_did_and_whether_it_was_stopped() -> None:
    report = SyncReport(indexed=["/d/a.txt"], unchanged=2, passages=7, pages=1, seconds=1.25)
    assert summary_line(report) == "1 indexed (1 pages, 7 passages), 2 unchanged, 0 removed, 0 skipped in 1.2 s"
    report.cancelled = True
    assert summary_line(report).endswith("(stopped before the end)")
