"""Ingestion spread by Ray: a local Ray cluster (a head and a worker node on loopback)
reads and embeds, this process writes.

The result must be what a sync in this process gives: the same files, the same passages
with the same locators, and a second run that finds nothing to do; and so it must be
when a worker is killed while it holds a file (that file is prepared again, by a worker
Ray restarts, and written once).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from archivist import collect_loaders

FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "formats"
# A few of the shared format samples, not the whole folder: the folder's 1,100 passages
# (2,700 more with the 619-page PDF) take minutes to embed twice on a 2-core machine, and
# tests/team/test_commands.py indexes all but that PDF already. These cover PDF, Word,
# e-mail, HTML, Korean text, and two files skipped with their reasons (encrypted, empty).
SAMPLES = ("multi-column.pdf", "korean-text-with-tables.pdf", "layout-parser-paper-with-table.pdf",
           "eng_spa_mult.docx", "eng_spa_mult.eml", "eng_spa_mult.html", "fake-email.eml", "password.pdf",
           "fake-text-all-whitespace.txt")
# The file whose worker is killed: 78 passages, several seconds of embedding on one
# thread, so the worker is surely still holding it when the kill comes.
HELD = "multi-column.pdf"
SKIPPED = {"password.pdf", "fake-text-all-whitespace.txt"}
ROWS = ("SELECT f.path, p.ordinal, p.page, p.start_offset, p.end_offset, p.text FROM archivist_passages p "
        "JOIN archivist_files f ON f.id = p.file_id WHERE p.collection = %s ORDER BY 1, 2")


def _collections(pg_server: Any, pg_database: str, team_home: Path, team_encoder: Any, unique: Any) -> tuple[Any, Any]:
    """Collection "spread" (indexed through Ray) and "here" (synced in this process)."""
    from archivist_team import schema
    from archivist_team.collection import TeamCollection
    from archivist_team.connection import connect
    from archivist_team.encoder import LazyEncoder

    url = pg_server.url(database=pg_database)
    admin = connect(url, None)
    try:
        for name in ("spread", "here"):
            schema.create_collection(admin, name, unique(f"archivist_{name}"))
    finally:
        admin.close()
    loaders = collect_loaders(team_home)
    # The spread one's encoder knows the home (the workers load the home's loaders) and is
    # never loaded here: the workers embed.
    spread = TeamCollection("spread", url, None, encoder=LazyEncoder(team_home, path=team_encoder.folder()),
                            loaders=lambda: loaders)
    here = TeamCollection("here", url, None, encoder=team_encoder, loaders=lambda: loaders)
    return spread, here


def test_ray_ingestion_matches_a_local_sync(ray_cluster, pg_server, pg_database, team_home: Path, team_encoder,
                                            unique, tmp_path: Path) -> None:
    from archivist_team.spread import sync_with_ray

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(6):
        (folder / f"note{i}.txt").write_text(f"Note {i}. The ferry number {i} leaves the harbour at {6 + i} "
                                             "o'clock.\n\nIt returns before dusk.\n", encoding="utf-8")
    (folder / "noise.bin").write_bytes(bytes(range(256)))
    spread, here = _collections(pg_server, pg_database, team_home, team_encoder, unique)
    try:
        report = sync_with_ray(spread, [spread.add_source(folder)], "local")
        local = here.sync([here.add_source(folder)])
        assert sorted(report.indexed) == sorted(local.indexed) and len(report.indexed) == 6
        assert [s.path for s in report.skipped] == [str((folder / "noise.bin").resolve())]
        assert spread.count() == here.count() == report.passages
        assert spread.conn.execute(ROWS, ("spread",)).fetchall() == here.conn.execute(ROWS, ("here",)).fetchall()
        [best, *_] = spread.search("When does ferry number 3 leave?", 3)
        assert best.path.endswith("note3.txt")
        again = sync_with_ray(spread, [str(folder.resolve())], "local")
        assert again.indexed == [] and again.unchanged == 6
    finally:
        spread.close()
        here.close()


@pytest.mark.timeout(900)
def test_a_worker_killed_mid_file_has_its_file_redone_once(ray_cluster, pg_server, pg_database, team_home: Path,
                                                           team_encoder, unique, tmp_path: Path) -> None:
    """SIGKILL the worker process preparing ``HELD``; the run finishes, ``HELD`` is prepared
    again by another process, and the collection equals an undisturbed sync's."""
    from archivist_team.spread import sync_with_ray

    if not FORMATS.is_dir():
        pytest.skip(f"{FORMATS} is absent (the shared test data is not checked out beside the repo)")
    folder = tmp_path / "formats"
    folder.mkdir()
    for name in SAMPLES:
        shutil.copy2(FORMATS / name, folder / name)
    held = str((folder / HELD).resolve())
    announced = f"archivist: preparing {held}\n"
    killed: list[int] = []
    done = threading.Event()

    def kill_the_holder() -> None:
        # Each worker says in its log which file it takes (spread.Preparer); kill the one
        # that took HELD as soon as it says so, while it reads and embeds it.
        while not done.is_set() and not killed:
            for pid, text in ray_cluster.worker_logs().items():
                if announced in text:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            done.wait(0.05)

    spread, here = _collections(pg_server, pg_database, team_home, team_encoder, unique)
    killer = threading.Thread(target=kill_the_holder, daemon=True)
    killer.start()
    try:
        report = sync_with_ray(spread, [spread.add_source(folder)], "local")
        done.set()
        killer.join(5)
        assert killed, f"no worker announced {HELD} in {ray_cluster.logs}"
        # The run finished, and the file the dead worker held was prepared again, by another
        # process (the worker Ray started in its place).
        again_by = [pid for pid, text in ray_cluster.worker_logs().items() if announced in text and pid != killed[0]]
        assert again_by, "the held file was not prepared again after its worker was killed"
        with pytest.raises(ProcessLookupError):
            os.kill(killed[0], 0)
        expected = sorted(str((folder / n).resolve()) for n in SAMPLES if n not in SKIPPED)
        assert sorted(report.indexed) == expected  # each once, the held one included
        assert sorted(s.path for s in report.skipped) == sorted(str((folder / n).resolve()) for n in SKIPPED)
        # Nothing duplicated: one row per file, each passage once, and exactly the passages
        # an undisturbed sync in this process writes.
        files = spread.conn.execute("SELECT path, count(*) FROM archivist_files WHERE collection = %s GROUP BY 1",
                                    ("spread",)).fetchall()
        assert sorted(files) == [(p, 1) for p in expected]
        local = here.sync([here.add_source(folder)])
        assert sorted(local.indexed) == expected
        rows = spread.conn.execute(ROWS, ("spread",)).fetchall()
        assert rows == here.conn.execute(ROWS, ("here",)).fetchall()
        assert len(rows) == spread.count() == report.passages == local.passages
        assert sum(1 for r in rows if r[0] == held) > 50
        # And a run after it has nothing left to do.
        after = sync_with_ray(spread, [str(folder.resolve())], "local")
        assert after.indexed == [] and after.unchanged == len(expected)
    finally:
        done.set()
        spread.close()
        here.close()


def test_the_command_line_indexes_with_ray(pg_server, pg_database, team_home: Path, keyring_file: Path,
                                           team_cli, tmp_path: Path) -> None:
    import json

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "mill.txt").write_text("The windmill on Sand Lane grinds barley for the brewery.\n", encoding="utf-8")
    added = team_cli("collections", "add", "docs", pg_server.url(database=pg_database), "--create")
    assert added.returncode == 0, added.stderr
    indexed = team_cli("collections", "index", "docs", folder, "--ray", "local", "--json")
    assert indexed.returncode == 0, indexed.stderr[-2000:]
    assert json.loads(indexed.stdout)["indexed"] == [str((folder / "mill.txt").resolve())]
