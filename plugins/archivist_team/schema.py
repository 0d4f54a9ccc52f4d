"""The tables a team database holds, their version, and making a collection in it.

One PostgreSQL database can hold several collections. Every row names its collection,
and each collection names the PostgreSQL role whose members may read it and, from
version 2, the role whose members may also change it (its ``writer``; none: the readers'
role, as in version 1): the tables' row-level security policies let a connection see
only the rows of collections whose role it is a member of (``pg_has_role``), and add,
change or delete only those of collections whose writer role it is a member of. The
plugin never works around this: it connects as the user the collection was added with,
and what that role cannot see does not exist for it. (The owner of the tables, who ran
``collections add --create`` first, is not subject to the policies, as PostgreSQL's
owners never are.)

Version 3 gives every file a ``meta`` text (its name, title, folders, dates and the
header of its passages, :func:`archivist.passage_header`, searchable through
``meta_tsv``) and writes each passage's ``tsv`` from its text *and* that header, as the
local library's keyword index holds both (issue #13): what tells forty near-identical
reports apart is in their names and title pages, not in the passage that answers.

The schema's version is kept in ``archivist_schema``; :data:`VERSION` is the one this
Archivist knows. A database made by a newer Archivist is refused with both numbers, and
one made by an older Archivist is upgraded step by step (:data:`UPGRADES`) by a user
allowed to change the tables.
"""

from __future__ import annotations

from typing import Any

from archivist import ArchivistError

#: The schema version this Archivist reads and writes.
VERSION = 3
#: Dimensions of the stored vectors: the built-in sentence encoder's (MiniLM-L6, 384).
DIM = 384

# Version 1: collections (each with its role), sources, files (content hash), skipped
# files, passages (text, locator, tsvector for keyword search, vector for dense search).
_CREATE_V1 = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE archivist_schema (version integer NOT NULL);
INSERT INTO archivist_schema (version) VALUES (1);
GRANT SELECT ON archivist_schema TO PUBLIC;

CREATE TABLE archivist_collections (
    name text PRIMARY KEY,
    role text NOT NULL,
    encoder text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE archivist_sources (
    collection text NOT NULL REFERENCES archivist_collections (name) ON DELETE CASCADE,
    path text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, path)
);
CREATE TABLE archivist_files (
    id bigserial PRIMARY KEY,
    collection text NOT NULL REFERENCES archivist_collections (name) ON DELETE CASCADE,
    source text NOT NULL,
    path text NOT NULL,
    sha256 text NOT NULL,
    title text,
    pages integer NOT NULL DEFAULT 0,
    indexed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection, path)
);
CREATE TABLE archivist_skipped (
    collection text NOT NULL REFERENCES archivist_collections (name) ON DELETE CASCADE,
    source text NOT NULL,
    path text NOT NULL,
    sha256 text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (collection, path)
);
CREATE TABLE archivist_passages (
    id bigserial PRIMARY KEY,
    collection text NOT NULL,
    file_id bigint NOT NULL REFERENCES archivist_files (id) ON DELETE CASCADE,
    ordinal integer NOT NULL,
    page integer,
    section text,
    start_offset integer NOT NULL,
    end_offset integer NOT NULL,
    text text NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
    embedding vector({DIM}) NOT NULL
);
CREATE INDEX archivist_passages_file ON archivist_passages (file_id);
CREATE INDEX archivist_passages_collection ON archivist_passages (collection);
CREATE INDEX archivist_passages_tsv ON archivist_passages USING gin (tsv);
CREATE INDEX archivist_passages_embedding ON archivist_passages USING hnsw (embedding vector_cosine_ops);

ALTER TABLE archivist_collections ENABLE ROW LEVEL SECURITY;
CREATE POLICY member ON archivist_collections USING (pg_has_role(current_user, role, 'MEMBER'));
"""
# The collections whose role the connected user is a member of. Written as a subquery,
# not a function, so PostgreSQL evaluates it once per query (a hashed set) rather than
# once per row: with a per-row function an exact scan of 50,000 passages took 7 times longer.
_MINE = "SELECT name FROM archivist_collections WHERE pg_has_role(current_user, role, 'MEMBER')"
_TABLES = ("archivist_sources", "archivist_files", "archivist_skipped", "archivist_passages")
_POLICIES = "".join(
    f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n"
    f"CREATE POLICY member ON {t} USING (collection IN ({_MINE})) WITH CHECK (collection IN ({_MINE}));\n"
    for t in _TABLES
)

# The collections the connected user may change: those whose writer role (the readers'
# role when none is named) it is a member of; a subquery for the reason given above. It
# reads archivist_collections under that table's own policy, so a writer who is not also
# a reader changes nothing (create_collection makes the writer role a member of the role).
_WRITABLE = ("SELECT name FROM archivist_collections "
             "WHERE pg_has_role(current_user, coalesce(writer, role), 'MEMBER')")
# Version 2: a collection may name a writer role; reading and writing get policies of their own.
_V2 = "ALTER TABLE archivist_collections ADD COLUMN writer text;\n" + "".join(
    f"DROP POLICY member ON {t};\n"
    f"CREATE POLICY member_read ON {t} FOR SELECT USING (collection IN ({_MINE}));\n"
    f"CREATE POLICY writer_insert ON {t} FOR INSERT WITH CHECK (collection IN ({_WRITABLE}));\n"
    f"CREATE POLICY writer_update ON {t} FOR UPDATE USING (collection IN ({_WRITABLE})) "
    f"WITH CHECK (collection IN ({_WRITABLE}));\n"
    f"CREATE POLICY writer_delete ON {t} FOR DELETE USING (collection IN ({_WRITABLE}));\n"
    for t in _TABLES
)

# Version 3: a file's searchable header (``meta``; ``meta_tsv`` finds the files an
# identifier names), and the passages' ``tsv`` written by the plugin (text and header
# together) instead of generated from the text alone. Rows written before keep their
# text-only ``tsv`` and an empty ``meta`` until the next sync of their source gives them
# their header (ingestion.add_headers: read again, not embedded again).
_V3 = """
ALTER TABLE archivist_files ADD COLUMN meta text NOT NULL DEFAULT '';
ALTER TABLE archivist_files ADD COLUMN meta_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', meta)) STORED;
CREATE INDEX archivist_files_meta ON archivist_files USING gin (meta_tsv);
ALTER TABLE archivist_passages ALTER COLUMN tsv DROP EXPRESSION;
"""

#: Steps from each older version to the next: ``UPGRADES[n]`` takes version n to n + 1.
UPGRADES: dict[int, str] = {1: _V2, 2: _V3}


class SchemaMismatch(ArchivistError):
    """The database's schema is not the version this Archivist knows."""


def installed_version(conn: Any) -> int | None:
    """The database's schema version; None when it holds no Archivist tables."""
    exists = conn.execute("SELECT to_regclass('archivist_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return None
    row = conn.execute("SELECT max(version) FROM archivist_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def check(conn: Any, where: str) -> None:
    """Raise :class:`SchemaMismatch` unless the database's schema is :data:`VERSION`."""
    found = installed_version(conn)
    if found == VERSION:
        return
    if found is None:
        raise SchemaMismatch(f"{where} holds no Archivist collections yet: create one there with "
                             "`archivist collections add NAME URL --create` (as a user allowed to create tables)")
    if found > VERSION:
        raise SchemaMismatch(f"{where}'s schema is version {found}, this Archivist knows version {VERSION}: "
                             "upgrade Archivist to use it (the database is left as it is)")
    raise SchemaMismatch(f"{where}'s schema is version {found}, this Archivist knows version {VERSION}: "
                         "run `archivist collections upgrade NAME` as a user allowed to change its tables")


def install(conn: Any, version: int = VERSION) -> bool:
    """Create the tables (version ``version``: :data:`VERSION` but in tests of upgrading)
    unless they exist; True when created. Version 1 is made, then upgraded step by step,
    so every new database goes the way an old one is upgraded. Runs in one transaction,
    under a lock, so two first users do not both create them."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('archivist_schema'))")
        if installed_version(conn) is not None:
            return False
        conn.execute(_CREATE_V1 + _POLICIES)
        for found in range(1, version):
            conn.execute(UPGRADES[found])
        conn.execute("UPDATE archivist_schema SET version = %s", (version,))
    return True


def upgrade(conn: Any) -> int:
    """Bring an older schema to :data:`VERSION` (one transaction); the version now."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('archivist_schema'))")
        found = installed_version(conn)
        if found is None or found > VERSION:
            check(conn, "the database")
        assert found is not None
        while found < VERSION:
            conn.execute(UPGRADES[found])
            found += 1
            conn.execute("UPDATE archivist_schema SET version = %s", (found,))
    return VERSION


def create_collection(conn: Any, name: str, role: str, writer: str | None = None) -> None:
    """Make collection ``name`` whose members are those of ``role``, of whom the members of
    ``writer`` may change it (None: all of them); each role is created NOLOGIN when absent
    and granted what it needs, ``writer`` made a member of ``role``. The tables are
    created first if needed; for a collection that exists, its roles are set anew."""
    from psycopg import sql

    install(conn)
    check(conn, "the database")
    with conn.transaction():
        for each in (role, writer):
            if each is not None and not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                                     (each,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(each)))
        ident = sql.Identifier(role)
        conn.execute(sql.SQL("GRANT SELECT ON archivist_collections TO {}").format(ident))
        # The tables hold every collection: which rows a role may change is the policies'
        # business (writer_insert, ...). A readers' role with a writer beside it gets no
        # more than SELECT (nothing is revoked: the same role may write another collection).
        grants = {role: "SELECT"} if writer not in (None, role) else {}
        grants[writer or role] = "SELECT, INSERT, UPDATE, DELETE"
        for grantee, privileges in grants.items():
            for table in _TABLES:
                conn.execute(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(
                    sql.Identifier(table), sql.Identifier(grantee)))
            if "INSERT" in privileges:
                for sequence in ("archivist_files_id_seq", "archivist_passages_id_seq"):
                    conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                        sql.Identifier(sequence), sql.Identifier(grantee)))
        if writer is not None and writer != role:
            conn.execute(sql.SQL("GRANT {} TO {}").format(ident, sql.Identifier(writer)))
        conn.execute("INSERT INTO archivist_collections (name, role, writer) VALUES (%s, %s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, writer = EXCLUDED.writer",
                     (name, role, writer))
