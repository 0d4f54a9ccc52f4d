"""Ingestion spread by Ray: a local Ray cluster reads and embeds, this process writes.

The result must be what a sync in this process gives: the same files, the same passages
with the same locators, and a second run that finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist import collect_loaders


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[team]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_ingestion_matches_a_local_sync(ray_local, pg_server, pg_database, team_home: Path, team_encoder,
                                            unique, tmp_path: Path) -> None:
    from archivist_team import schema
    from archivist_team.collection import TeamCollection
    from archivist_team.connection import connect
    from archivist_team.encoder import LazyEncoder
    from archivist_team.spread import sync_with_ray

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(6):
        (folder / f"note{i}.txt").write_text(f"Note {i}. The ferry number {i} leaves the harbour at {6 + i} "
                                             "o'clock.\n\nIt returns before dusk.\n", encoding="utf-8")
    (folder / "noise.bin").write_bytes(bytes(range(256)))
    admin = connect(pg_server.url(database=pg_database), None)
    try:
        for name in ("spread", "here"):
            schema.create_collection(admin, name, unique(f"archivist_{name}"))
    finally:
        admin.close()
    url = pg_server.url(database=pg_database)
    loaders = collect_loaders(team_home)
    encoder = LazyEncoder(team_home, path=team_encoder.folder())
    spread = TeamCollection("spread", url, None, encoder=encoder, loaders=lambda: loaders)
    here = TeamCollection("here", url, None, encoder=team_encoder, loaders=lambda: loaders)
    try:
        report = sync_with_ray(spread, [spread.add_source(folder)], "local")
        local = here.sync([here.add_source(folder)])
        assert sorted(report.indexed) == sorted(local.indexed) and len(report.indexed) == 6
        assert [s.path for s in report.skipped] == [str((folder / "noise.bin").resolve())]
        assert spread.count() == here.count() == report.passages
        rows = "SELECT f.path, p.ordinal, p.page, p.start_offset, p.end_offset, p.text FROM archivist_passages p " \
               "JOIN archivist_files f ON f.id = p.file_id WHERE p.collection = %s ORDER BY 1, 2"
        assert spread.conn.execute(rows, ("spread",)).fetchall() == here.conn.execute(rows, ("here",)).fetchall()
        [best, *_] = spread.search("When does ferry number 3 leave?", 3)
        assert best.path.endswith("note3.txt")
        again = sync_with_ray(spread, [str(folder.resolve())], "local")
        assert again.indexed == [] and again.unchanged == 6
    finally:
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
