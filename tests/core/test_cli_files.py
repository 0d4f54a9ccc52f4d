"""``archivist ask --file``: a whole file answered from, as a user meets it on the command line.

The pipeline runs on the scripted model in process (what is printed where); the one-line
error for a file that cannot be read runs the real command in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from click.testing import Result as CliResult
from pdfs import report_pages, text_pdf

from archivist.store.conversations import Conversations


def ask_in_process(app, *args: str) -> CliResult:
    from archivist.cli import State, cli

    result = CliRunner().invoke(cli, ["ask", *args], obj=State(app), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_ask_file_prints_the_answer_and_its_sources_with_pages(scripted_app, scripted, tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "report.pdf", report_pages(3))
    scripted.reply("Page three covers item 21 [3].")
    result = ask_in_process(scripted_app, "--file", str(pdf), "What does the report cover?")
    lines = result.stdout.splitlines()
    assert lines[0] == "Page three covers item 21 [3]."
    assert f"[3] {pdf}, page 3" in lines
    assert "Report page 3 marker P3Q." in result.stdout
    assert "read in" not in result.stderr  # it fitted: read whole


def test_ask_file_reads_a_long_file_in_parts_with_progress_on_stderr(scripted_app, scripted, tmp_path) -> None:
    pdf = text_pdf(tmp_path / "report.pdf", report_pages(50))
    scripted_app.settings().set("gui.file_context_budget", 400)
    for k in range(1, 40):
        scripted.reply(f"Note {k} [1].")
    result = ask_in_process(scripted_app, "--file", str(pdf), "--json", "Summarise this report.")
    payload = json.loads(result.stdout)
    parts = payload["parts"]
    assert parts > 2 and payload["files"] == [str(pdf)]
    # The answer here is the note queued after the parts' notes: it cites part 1, whose
    # note cited its first source, page 1.
    assert payload["answer"] == f"Note {parts + 1} [1]."
    assert [(c["n"], c["path"], c["page"]) for c in payload["citations"]] == [(1, str(pdf), 1)]
    for k in range(1, 40):
        scripted.reply(f"Note {k} [1].")
    streamed = ask_in_process(scripted_app, "--file", str(pdf), "Summarise this report.")
    assert f"… Reading part 1 of {parts} (report.pdf, page" in streamed.stderr
    assert f"(report.pdf: read in {parts} parts)" in streamed.stderr
    assert "Reading part" not in streamed.stdout
    assert f"[1] {pdf}, page 1" in streamed.stdout.splitlines()


def test_ask_file_pins_it_to_the_conversation(scripted_app, scripted, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The boiler is serviced every October.\n", encoding="utf-8")
    scripted.reply("October [1].")
    scripted.reply("Still October [1].")
    first = json.loads(ask_in_process(scripted_app, "--file", str(notes), "--json", "When?").stdout)
    again = json.loads(ask_in_process(scripted_app, "--conversation", str(first["conversation_id"]), "--json",
                                      "Sure?").stdout)
    assert again["files"] == [str(notes)]
    assert Conversations(scripted_app.database).pinned_files(first["conversation_id"]) == (str(notes),)


def test_a_file_that_cannot_be_read_is_one_line_naming_it(home: Path, default_model_dir: Path, tmp_path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really\n")
    env = {**os.environ, "ARCHIVIST_HOME": str(home)}
    result = subprocess.run([sys.executable, "-m", "archivist.cli", "ask", "--model", str(default_model_dir),
                             "--file", str(broken), "Summarise it."], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: cannot read {broken}: ")
    assert "Traceback" not in result.stderr
