"""A damaged home, repaired with one command: ``archivist doctor --repair``.

Each test damages one part of a real home the way a crash, a full disk or a bad sector
would, runs the command a user would (a real ``archivist`` process), expects one line
that says what to run, runs ``doctor --repair``, and runs the command again. Nothing of
the user's may disappear: what was damaged is moved aside, and the lines say where.

The processes load only the FAISS plugin (``ARCHIVIST_PLUGINS``): these commands are
short, and a process that exits while the safety plugin's warm-up thread is still
creating its ONNX Runtime session is aborted by the C++ runtime ("terminate called
without an active exception", exit 134), which is that plugin's to fix, not a damage.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ARCHIVIST_HOME": str(home), "ARCHIVIST_PLUGINS": "faiss", **(env or {})}
    full.pop("ARCHIVIST_WHEEL_CACHE", None)
    if env and "ARCHIVIST_WHEEL_CACHE" in env:
        full["ARCHIVIST_WHEEL_CACHE"] = env["ARCHIVIST_WHEEL_CACHE"]
    return subprocess.run([sys.executable, "-m", "archivist.cli", *args], capture_output=True, text=True,
                          env=full, timeout=300)


def one_line_advice(result: subprocess.CompletedProcess[str]) -> str:
    """The failing command's stderr: one line, naming the way out, no driver's words."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "archivist doctor --repair" in lines[0], lines[0]
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    return lines[0]


def doctor_problems(home: Path) -> list[dict]:
    result = run(home, "doctor", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout).get("problems", [])


def repair(home: Path) -> dict:
    result = run(home, "doctor", "--repair", "--json")
    assert result.returncode == 0, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["problems"] == []
    return report


# -- the document index -----------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> Path:
    from archivist_models.embedder import RECIPE_VERSION, build_embedder

    return build_embedder(CACHE / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", CACHE / "wheels")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, encoder: Path) -> tuple[Path, Path]:
    """A home whose library holds three notes (built once; each test gets a copy)."""
    from archivist_faiss.index import open_index
    from archivist_models.embeddings import Embedder

    base = tmp_path_factory.mktemp("indexed")
    home, docs = base / "home", base / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"note{n}.txt").write_text(
            "\n\n".join(f"Note {n}, paragraph {p}: the lease of flat {n} is renewed every March, "
                        f"and the deposit is {p * 100 + n} euros." for p in range(40)), encoding="utf-8")
    (home / "models").mkdir(parents=True)
    (home / "models" / "embedder-minilm-l6-v2").symlink_to(encoder, target_is_directory=True)
    index = open_index(home, embedder=Embedder(encoder))
    try:
        report = index.index([docs])
        assert len(report.indexed) == 3 and report.passages > 10
        index.search("When is the lease renewed?", 3)  # writes the vectors file too
    finally:
        index.close()
    return home, docs


@pytest.fixture
def home_with_index(indexed: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    home, docs = indexed
    copy = tmp_path / "home"
    shutil.copytree(home, copy, symlinks=True)
    assert run(copy, "sources", "list").returncode == 0
    return copy, docs


def index_db(home: Path) -> Path:
    return home / "plugins" / "faiss" / "index.db"


def test_a_truncated_index_is_one_line_and_doctor_repair_brings_the_library_back(
    home_with_index: tuple[Path, Path],
) -> None:
    home, docs = home_with_index
    db = index_db(home)
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 2)
    damaged_bytes = db.read_bytes()

    for command in (["sources", "list"], ["search", "lease renewal"], ["index", str(docs)]):
        line = one_line_advice(run(home, *command))
        assert str(db) in line and "DatabaseError" not in line

    problems = doctor_problems(home)
    assert [p["part"] for p in problems] == ["plugin faiss"]
    assert "damaged" in problems[0]["problem"] and str(docs) in problems[0]["problem"]
    assert problems[0]["repairable"]

    done = repair(home)["repaired"]
    moved = [p for p in db.parent.iterdir() if p.name.startswith("index.db.damaged-") and p.suffix != ".db-wal"
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1 and moved[0].read_bytes() == damaged_bytes  # nothing of it deleted
    text = "\n".join(done)
    assert str(moved[0]) in text  # ... and the lines say where it went
    assert "vectors" in text and f"archivist index {docs}" in text

    listed = run(home, "sources", "list")
    assert listed.returncode == 0 and "no sources yet" in listed.stdout
    assert run(home, "index", str(docs)).returncode == 0
    found = run(home, "search", "When is the lease renewed?", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["hits"]
    assert doctor_problems(home) == []


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_random_bytes_in_a_passage_are_found_and_repaired(home_with_index: tuple[Path, Path]) -> None:
    """SQLite keeps no checksum of a row: bytes changed inside one pass its own checks."""
    home, docs = home_with_index
    db = index_db(home)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        embedding = conn.execute("SELECT embedding FROM chunks ORDER BY id LIMIT 1 OFFSET 7").fetchone()[0]
    offset = db.read_bytes().index(embedding)
    _overwrite(db, offset + 512, bytes(range(200, 232)))  # 32 bytes in the middle of one embedding
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]  # SQLite sees nothing

    problems = doctor_problems(home)
    assert len(problems) == 1 and "embedding" in problems[0]["problem"], problems
    repair(home)
    assert run(home, "index", str(docs)).returncode == 0
    assert doctor_problems(home) == []


def test_an_overwritten_page_in_the_middle_is_found_and_repaired(home_with_index: tuple[Path, Path]) -> None:
    home, _ = home_with_index
    db = index_db(home)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.stat().st_size // 4096
    _overwrite(db, (pages // 2) * 4096, os.urandom(4096))

    problems = doctor_problems(home)
    assert len(problems) == 1 and "document index" in problems[0]["problem"], problems
    done = repair(home)["repaired"]
    assert any("moved the damaged document index" in line for line in done)
    assert run(home, "sources", "list").returncode == 0


def test_a_damaged_vectors_file_is_a_cache_made_again(home_with_index: tuple[Path, Path]) -> None:
    home, _ = home_with_index
    vectors = home / "plugins" / "faiss" / "vectors.faiss"
    _overwrite(vectors, vectors.stat().st_size // 2, bytes(range(64)))

    problems = doctor_problems(home)
    assert len(problems) == 1 and "vectors file" in problems[0]["problem"], problems
    done = repair(home)["repaired"]
    assert done == [f"deleted the vectors file {vectors}: a cache, made again from the index on the next search"]
    assert index_db(home).exists()  # the passages themselves are kept
    found = run(home, "search", "When is the lease renewed?", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["hits"]
    assert doctor_problems(home) == []


# -- the home's own files ---------------------------------------------------------------


def test_a_malformed_config_toml_leaves_every_command_working_and_is_moved_aside(home: Path) -> None:
    config = home / "config.toml"
    config.write_text('system_prompt = "Answer briefly."\nsources = \n[retrieval\n', encoding="utf-8")

    for args in (["--safe-mode", "doctor"], ["doctor", "--json"], ["models", "list"], ["sources", "list"]):
        result = run(home, *args)
        assert result.returncode == 0, (args, result.stderr)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and str(config) in warnings[0] and "line 2" in warnings[0], result.stderr
        assert "archivist doctor --repair" in warnings[0]

    result = run(home, "doctor", "--repair")
    assert result.returncode == 0, result.stderr
    moved = [p for p in home.iterdir() if p.name.startswith("config.toml.damaged-")]
    assert len(moved) == 1 and "Answer briefly" in moved[0].read_text(encoding="utf-8")
    assert str(moved[0]) in result.stdout and "writes no config.toml" in result.stdout
    assert not config.exists()
    again = run(home, "models", "list")
    assert again.returncode == 0 and "warning" not in again.stderr


def test_a_config_section_of_the_wrong_type_is_ignored_with_a_warning(home: Path) -> None:
    (home / "config.toml").write_text("plugins = 3\n", encoding="utf-8")
    result = run(home, "plugins", "list")
    assert result.returncode == 0, result.stderr
    assert "`plugins` must be a section" in result.stderr
    assert [p["part"] for p in doctor_problems(home)] == ["config"]


def test_a_damaged_plugins_json_is_reported_and_moved_aside(home: Path) -> None:
    state = home / "plugins.json"
    state.write_text('{"disabled": 5}', encoding="utf-8")
    assert run(home, "plugins", "list").returncode == 0
    problems = doctor_problems(home)
    assert [p["part"] for p in problems] == ["plugin state"] and "every plugin is on" in problems[0]["problem"]
    done = repair(home)["repaired"]
    moved = [p for p in home.iterdir() if p.name.startswith("plugins.json.damaged-")]
    assert len(moved) == 1 and moved[0].read_text(encoding="utf-8") == '{"disabled": 5}'
    assert str(moved[0]) in done[0]


def test_a_truncated_archivist_db_is_one_line_and_repair_keeps_the_conversations(
    home: Path, default_model_dir: Path,
) -> None:
    from archivist.store.conversations import Conversations
    from archivist.store.database import open_database

    db_path = home / "archivist.db"
    db = open_database(db_path)
    conversations = Conversations(db)
    for n in range(30):
        cid = conversations.create_conversation(f"conversation {n}")
        conversations.add_message(cid, "user", "Where is the lease? " * 40)
    db.close()
    with open(db_path, "r+b") as fh:
        fh.truncate(db_path.stat().st_size // 3)
    damaged = db_path.read_bytes()

    one_line_advice(run(home, "models", "use", str(default_model_dir)))
    one_line_advice(run(home, "ask", "--no-docs", "hello"))
    problems = doctor_problems(home)
    assert [p["part"] for p in problems] == ["database"] and "conversations" in problems[0]["problem"]

    done = repair(home)["repaired"]
    moved = [p for p in home.iterdir() if p.name.startswith("archivist.db.damaged-")
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1 and moved[0].read_bytes() == damaged
    assert any(str(moved[0]) in line for line in done) and any(".recover" in line for line in done)
    result = run(home, "models", "use", str(default_model_dir))  # the database answers again
    assert result.returncode == 0, result.stderr
    assert doctor_problems(home) == []


# -- plugins' own files -----------------------------------------------------------------


class BrokenStore:
    """A library-like contribution that keeps a file, reports it damaged and repairs it."""

    name = "broken-store"

    def __init__(self, folder: Path) -> None:
        self.file = folder / "store.bin"
        self.repaired = 0

    def search(self, query: str, k: int = 5) -> list:
        return []

    def check(self) -> list[str]:
        return [] if self.file.read_text() == "good" else [f"{self.file} is damaged: --repair rewrites it"]

    def repair(self) -> list[str]:
        self.repaired += 1
        self.file.write_text("good")
        return [f"rewrote {self.file}"]


def test_doctor_asks_every_repairable_contribution_and_survives_one_that_fails(home: Path) -> None:
    from archivist import hookimpl
    from archivist.application import Application
    from archivist.damage import find_problems, repair

    store = BrokenStore(home)
    store.file.write_text("bad")

    class Failing(BrokenStore):
        name = "failing"

        def check(self) -> list[str]:
            raise OSError("disk on fire")

    class Plugin:
        def __init__(self, contribution: BrokenStore) -> None:
            self.contribution = contribution

        @hookimpl
        def register_retrievers(self, register):
            register(self.contribution)

    app = Application(home, load_entry_points=False,
                      extra_plugins=[("store-plugin", Plugin(store)), ("failing-plugin", Plugin(Failing(home)))])
    try:
        problems = find_problems(app)
        assert [p.text for p in problems if p.repairable] == [f"{store.file} is damaged: --repair rewrites it"]
        assert any("could not check" in p.text and "disk on fire" in p.text for p in problems)
        done, left = repair(app)
        assert done == [f"rewrote {store.file}"] and store.repaired == 1
        assert all(not p.repairable for p in left)
    finally:
        app.close()
