"""``archivist index``, ``search`` and ``sources`` through click, and once through the real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import click
from click.testing import CliRunner

from archivist_faiss.commands import register

from .conftest import formats_dir


def make_cli(home: Path) -> click.Group:
    @click.group()
    @click.pass_context
    def cli(ctx):
        ctx.obj = SimpleNamespace(home=home)

    register(cli)
    return cli


def docs_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in ("fake-memo.pdf", "eng_spa_mult.docx", "password.pdf"):
        shutil.copy(formats_dir() / n, docs / n)
    return docs


def test_index_search_sources(tmp_path, faiss_home):
    docs = docs_folder(tmp_path)
    cli = make_cli(faiss_home)
    runner = CliRunner()
    r = runner.invoke(cli, ["index", str(docs), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(summary["indexed"]) == 2
    assert summary["skipped"] == [{"path": str(docs / "password.pdf"), "reason": "encrypted PDF (a password is needed)"}]

    r = runner.invoke(cli, ["index", str(docs)])
    assert r.exit_code == 0 and "3 unchanged" in r.stdout, r.output
    assert "password.pdf: encrypted" in r.stdout

    r = runner.invoke(cli, ["search", "how many bottles", "-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)["hits"]
    assert len(hits) == 2
    assert set(hits[0]) >= {"path", "page", "start", "end", "text", "score"}
    assert hits[0]["path"].endswith("fake-memo.pdf") and hits[0]["page"] == 1

    r = runner.invoke(cli, ["search", "bottles"])
    assert r.exit_code == 0 and "fake-memo.pdf p.1" in r.stdout

    queries = tmp_path / "q.jsonl"
    queries.write_text('"how many bottles"\n{"query": "seres humanos libres", "id": 7}\n')
    r = runner.invoke(cli, ["search", "--jsonl", str(queries), "-k", "1"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["query"] for x in lines] == ["how many bottles", "seres humanos libres"]
    assert lines[1]["hits"][0]["path"].endswith("eng_spa_mult.docx")

    r = runner.invoke(cli, ["sources", "list", "--json"])
    rows = json.loads(r.stdout)
    assert rows[0]["path"] == str(docs) and rows[0]["indexed"] == 2 and rows[0]["skipped"] == 1

    r = runner.invoke(cli, ["sources", "remove", str(docs), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["files"] == 3
    r = runner.invoke(cli, ["sources", "remove", str(docs)])
    assert r.exit_code != 0 and "not a source" in r.output
    r = runner.invoke(cli, ["search", "bottles", "--json"])
    assert json.loads(r.stdout)["hits"] == []


def test_usage_errors(faiss_home):
    r = CliRunner().invoke(make_cli(faiss_home), ["search"])
    assert r.exit_code == 2 and "QUERY" in r.output


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


def test_files_of_an_unread_type_are_summed_up_per_type_and_problems_listed_one_by_one() -> None:
    from archivist_faiss.commands import skipped_lines

    skipped = [(f"/d/shot{i}.png", "unsupported file type '.png'") for i in range(5)]
    skipped += [("/d/password.pdf", "encrypted PDF (a password is needed)"), ("/d/a.bin", "unsupported file type '.bin'")]
    assert skipped_lines(skipped) == [
        "  skipped /d/password.pdf: encrypted PDF (a password is needed)",
        "  skipped 5 .png files, a type Archivist does not read: shot0.png, shot1.png, shot2.png and 2 more",
        "  skipped 1 .bin file, a type Archivist does not read: a.bin",
    ]


def test_progress_bar_names_the_file_and_how_far_a_big_one_is_embedded() -> None:
    from archivist_faiss.commands import _item_label

    assert _item_label(None) == "" and _item_label("/docs/a.pdf") == "a.pdf"
    assert _item_label("/docs/report.pdf\x0045%") == "report.pdf (45% embedded)"
