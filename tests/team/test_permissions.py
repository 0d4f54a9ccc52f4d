"""Row-level security, through the app: two roles, two collections, each user sees only its own.

The administrator creates collections ``alpha`` and ``beta`` in one database, each with
its role; ``alice`` is a member of alpha's role only, ``bob`` of beta's. Each adds both
collections to an Archivist home of their own (with the command line, passwords in the
keychain) and asks through the application's assistant.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archivist import ArchivistError, PluginContext
from archivist_team.commands import add_collection, open_entry
from archivist_team.registry import Entry, Registry


@pytest.fixture()
def two_teams(pg_server, pg_database, unique, tmp_path: Path):
    from archivist_team import schema
    from archivist_team.connection import connect

    roles = {"alpha": unique("alpha_team"), "beta": unique("beta_team")}
    admin = connect(pg_server.url(database=pg_database), None)
    try:
        for name, role in roles.items():
            schema.create_collection(admin, name, role)
    finally:
        admin.close()
    users = {"alpha": unique("alice"), "beta": unique("bob")}
    for team, user in users.items():
        pg_server.new_user(user, f"{user}-pw", roles[team])
    docs = {}
    for team, text in {"alpha": "The alpha team's launch code word is PERIWINKLE, chosen in May.",
                       "beta": "The beta team's launch code word is MARIGOLD, chosen in June."}.items():
        folder = tmp_path / f"{team}-docs"
        folder.mkdir()
        (folder / "secret.txt").write_text(text + "\n", encoding="utf-8")
        docs[team] = folder
    return users, docs


def test_each_user_sees_only_the_collection_of_their_role(two_teams, pg_server, pg_database, team_home: Path,
                                                          keyring_file: Path, team_cli) -> None:
    users, docs = two_teams
    for team, user in users.items():
        url = pg_server.url(user, f"{user}-pw", pg_database)
        added = team_cli("collections", "add", team, url)
        assert added.returncode == 0, added.stderr
        assert f"{user}-pw" not in (team_home / "plugins" / "team" / "collections.json").read_text()
        indexed = team_cli("collections", "index", team, docs[team], "--json")
        assert indexed.returncode == 0, indexed.stderr
        assert json.loads(indexed.stdout)["passages"] == 1
        # Alice cannot add Bob's collection (and Bob cannot add Alice's): it does not exist for them.
        other = "beta" if team == "alpha" else "alpha"
        refused = team_cli("collections", "add", other, url)
        assert refused.returncode == 1 and "not a member of its role" in refused.stderr
        Registry(team_home / "plugins" / "team").remove(team)

    from archivist.application import Application

    for team, user in users.items():
        other = "beta" if team == "alpha" else "alpha"
        folder = team_home / "plugins" / "team"
        context = PluginContext(home=team_home)
        add_collection(context, team, pg_server.url(user, f"{user}-pw", pg_database))
        # Written by hand: `collections add` refuses a collection the user cannot see.
        Registry(folder).put(Entry(other, pg_server.url(user, None, pg_database), True))
        from archivist_team import keychain

        keychain.save(folder, other, f"{user}-pw")
        app = Application(team_home)
        try:
            names = sorted(c.obj.name for c in app.host.retrievers() if c.plugin == "team")
            assert names == ["team:alpha", "team:beta"]
            passages, any_documents = app.assistant().retrieve("What is the launch code word?", 5)
            words = {"alpha": "PERIWINKLE", "beta": "MARIGOLD"}
            assert any_documents and passages and all(words[team] in p.text for p in passages)
            assert not any(words[other] in p.text for p in passages)
        finally:
            app.close()
        mine, theirs = (open_entry(context, e) for e in (Registry(folder).get(team), Registry(folder).get(other)))
        try:
            assert mine.visible() and mine.count() == 1
            assert not theirs.visible() and theirs.count() == 0 and theirs.sources() == []
            assert theirs.search("launch code word MARIGOLD PERIWINKLE", 5, min_similarity=0) == []
            # Writing into the other collection is refused by the database, not by the plugin.
            with pytest.raises(Exception, match="row-level security"):
                theirs.add_source(docs[team])
        finally:
            mine.close()
            theirs.close()
        for entry in Registry(folder).entries():
            Registry(folder).remove(entry.name)


def test_a_wrong_password_is_one_clear_error(pg_server, pg_database, team_home: Path, keyring_file: Path) -> None:
    context = PluginContext(home=team_home)
    with pytest.raises(ArchivistError, match=r"cannot connect to database .* password authentication failed"):
        add_collection(context, "docs", pg_server.url("archivist_admin", "wrong", pg_database))
