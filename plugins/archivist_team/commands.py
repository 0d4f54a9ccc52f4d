"""``archivist collections``: add, list, index, search, upgrade and remove team collections.

Errors a user can act on are :class:`archivist.ArchivistError` (one line from the CLI).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from archivist import ArchivistError, PluginContext, SyncProgress
from archivist_team import PLUGIN, connection, keychain, schema
from archivist_team.registry import Entry, Registry, check_name


def folder(context: PluginContext) -> Path:
    return context.data_dir(PLUGIN)


def open_entry(context: PluginContext, entry: Entry, min_similarity: float = 0.30) -> Any:
    """The :class:`TeamCollection` of an added collection, its password from the keychain."""
    from archivist_team.collection import TeamCollection

    password = keychain.load(folder(context), entry.name) if entry.keychain else None
    return TeamCollection(entry.name, entry.url, password, home=context.home, loaders=context.loaders,
                          min_similarity=min_similarity)


def add_collection(context: PluginContext, name: str, url: str, *, create: bool = False, role: str | None = None,
                   password: str | None = None, writer: str | None = None) -> Entry:
    """Record collection ``name`` at ``url`` (its password, from the URL or given, in the
    keychain), after checking it can be reached and seen; ``create`` makes it first (the
    members of ``role`` reading it, those of ``writer`` also changing it; None: all)."""
    check_name(name)
    plain, in_url = connection.split_password(url)
    password = password if password is not None else in_url
    conn = connection.connect(plain, password)
    try:
        if create:
            schema.create_collection(conn, name, role or f"archivist_{name}".replace("-", "_").replace(".", "_"),
                                     writer)
        schema.check(conn, connection.where(plain))
        seen = conn.execute("SELECT 1 FROM archivist_collections WHERE name = %s", (name,)).fetchone()
    finally:
        conn.close()
    if seen is None:
        raise ArchivistError(f"{connection.where(plain)} has no collection {name} that this user may use: "
                             "it does not exist, or the user is not a member of its role (ask the database's "
                             "administrator to grant it), or create it with --create")
    if password is not None:
        keychain.save(folder(context), name, password)
    entry = Entry(name, plain, password is not None)
    Registry(folder(context)).put(entry)
    return entry


class DatabaseErrors(click.Group):
    """A group whose commands report the database's refusals (a permission, a constraint)
    as one-line Archivist errors, not as unexpected exceptions."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImportError:
            raise
        except Exception as exc:
            psycopg = sys.modules.get("psycopg")
            if psycopg is not None and isinstance(exc, psycopg.Error):
                message = " ".join(str(exc).split())
                raise ArchivistError(f"the database refused: {message}") from exc
            raise


def add_commands(cli: Any, context: PluginContext) -> None:
    @cli.group("collections", cls=DatabaseErrors)
    def collections() -> None:
        """Document collections shared through PostgreSQL with pgvector (pip install 'archivist[team]')."""

    @collections.command("add")
    @click.argument("name")
    @click.argument("url")
    @click.option("--create", is_flag=True, help="Create the collection (and the tables) in the database first.")
    @click.option("--role", help="With --create: the PostgreSQL role whose members may use it (default archivist_NAME).")
    @click.option("--writer", metavar="ROLE",
                  help="With --create: only members of this role may change it; the others of --role only read it.")
    @click.option("--password-env", metavar="VAR", help="Read the password from this environment variable.")
    def add(name: str, url: str, create: bool, role: str | None, writer: str | None, password_env: str | None) -> None:
        """Add collection NAME of the database at URL (postgresql://USER[:PASSWORD]@HOST:PORT/DB[?sslmode=...])."""
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if password is None:
                raise ArchivistError(f"the environment variable {password_env} is not set")
        if writer and not create:
            raise ArchivistError("--writer goes with --create (it sets who may change the collection)")
        entry = add_collection(context, name, url, create=create, role=role, password=password, writer=writer)
        kept = " (password in the keychain)" if entry.keychain else ""
        click.echo(f"added collection {name}: {connection.where(entry.url)}{kept}")

    @collections.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option("--check", is_flag=True, help="Connect to each and count its passages.")
    def list_(as_json: bool, check: bool) -> None:
        """The collections added, and where each is."""
        rows = []
        for entry in Registry(folder(context)).entries():
            row: dict[str, Any] = {"name": entry.name, "url": entry.url, "keychain": entry.keychain}
            if check:
                collection = open_entry(context, entry)
                try:
                    row["passages"] = collection.count() if collection.visible() else None
                    row["status"] = "ok" if row["passages"] is not None else "not visible to this user"
                except ArchivistError as exc:
                    row["status"] = str(exc)
                finally:
                    collection.close()
            rows.append(row)
        if as_json:
            click.echo(json.dumps(rows))
            return
        if not rows:
            click.echo("no collections added (archivist collections add NAME postgresql://...)")
        for row in rows:
            extra = f"  {row['passages']} passages" if row.get("passages") is not None else ""
            status = f"  [{row['status']}]" if check and row.get("status") != "ok" else ""
            click.echo(f"{row['name']}  {connection.where(row['url'])}{extra}{status}")

    @collections.command("remove")
    @click.argument("name")
    def remove(name: str) -> None:
        """Forget collection NAME here (and its password); the database keeps it."""
        Registry(folder(context)).remove(name)
        keychain.forget(folder(context), name)
        click.echo(f"removed collection {name} from this Archivist (the database still holds it)")

    @collections.command("upgrade")
    @click.argument("name")
    def upgrade(name: str) -> None:
        """Bring collection NAME's database to the schema version this Archivist knows."""
        entry = Registry(folder(context)).get(name)
        password = keychain.load(folder(context), name) if entry.keychain else None
        conn = connection.connect(entry.url, password)
        try:
            version = schema.upgrade(conn)
        finally:
            conn.close()
        click.echo(f"{connection.where(entry.url)}: schema version {version}")

    @collections.command("index")
    @click.argument("name")
    @click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
    @click.option("--ray", "ray_address", metavar="local|ADDRESS",
                  help="Read and embed on a Ray cluster: 'local' starts one here, else a cluster's address.")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    def index(name: str, paths: tuple[Path, ...], ray_address: str | None, as_json: bool) -> None:
        """Index files and folders into collection NAME (unchanged files are left as they are)."""
        collection = open_entry(context, Registry(folder(context)).get(name))
        try:
            keys = [collection.add_source(p) for p in paths]
            if ray_address:
                from archivist_team.spread import sync_with_ray

                report = sync_with_ray(collection, keys, ray_address)
            else:
                report = collection.sync(keys, progress=None if as_json else _progress)
        finally:
            collection.close()
        if as_json:
            click.echo(json.dumps({"indexed": report.indexed, "unchanged": report.unchanged,
                                   "removed": report.removed, "passages": report.passages,
                                   "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
                                   "seconds": round(report.seconds, 3)}))
            return
        click.echo(f"{name}: {len(report.indexed)} indexed ({report.pages} pages, {report.passages} passages), "
                   f"{report.unchanged} unchanged, {len(report.removed)} removed, {len(report.skipped)} skipped "
                   f"in {report.seconds:.1f} s")
        for skipped in report.skipped:
            click.echo(f"  skipped {skipped.path}: {skipped.reason}")

    @collections.command("search")
    @click.argument("name")
    @click.argument("query")
    @click.option("-k", default=5, show_default=True, help="Passages to show.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def search(name: str, query: str, k: int, as_json: bool) -> None:
        """The passages of collection NAME that best answer QUERY, with where each is."""
        collection = open_entry(context, Registry(folder(context)).get(name))
        try:
            found = collection.search(query, k)
        finally:
            collection.close()
        if as_json:
            click.echo(json.dumps([p.to_dict() for p in found], ensure_ascii=False))
            return
        for n, p in enumerate(found, 1):
            page = f" p.{p.locator.page}" if p.locator.page else ""
            click.echo(f"[{n}] {p.path}{page} [{p.locator.start}:{p.locator.end}] ({p.score:.3f})")
            click.echo(f"    {' '.join(p.text.split())[:200]}")


def _progress(p: SyncProgress) -> None:
    if p.path and not p.part_total:
        print(f"\r[{p.done + 1}/{p.total}] {Path(p.path).name[:60]:<60}", end="", file=sys.stderr, flush=True)
    elif not p.path:
        print(file=sys.stderr)
