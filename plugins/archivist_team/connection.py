"""Connecting to a team database: the optional packages, the URL, the password.

psycopg and pgvector come with ``pip install 'archivist[team]'``; the default install
has neither, and :func:`require` says so in one line. A URL is stored without its
password (which goes to the keychain, :mod:`archivist_team.keychain`); TLS is whatever the
URL's ``sslmode`` asks for (libpq's own rules: ``require``, ``verify-full``, ...).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from archivist import ArchivistError

INSTALL = "pip install 'archivist[team]'"


class MissingPackages(ArchivistError):
    """psycopg or pgvector is not installed."""


def require() -> None:
    """Raise :class:`MissingPackages` naming what to install when psycopg or pgvector is missing."""
    missing = []
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing.append("psycopg")
    try:
        import pgvector.psycopg  # noqa: F401
    except ImportError:
        missing.append("pgvector")
    if missing:
        raise MissingPackages(f"PostgreSQL collections need {' and '.join(missing)}, which the default install "
                              f"leaves out: install them with {INSTALL}")


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password, and the password (None when it has none)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ArchivistError(f"not a PostgreSQL URL: {redacted(url)} (expected postgresql://USER@HOST:PORT/DATABASE)")
    if parts.password is None:
        return url, None
    user = quote(unquote(parts.username or ""), safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), unquote(parts.password)


def redacted(url: str) -> str:
    """``url`` safe to show: the password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def where(url: str) -> str:
    """The database a URL names, for messages: ``db on host:port as user``."""
    parts = urlsplit(url)
    return (f"database {parts.path.lstrip('/') or '(default)'} on {parts.hostname or 'localhost'}"
            f"{':' + str(parts.port) if parts.port else ''} as {parts.username or '(default user)'}")


def connect(url: str, password: str | None) -> Any:
    """An autocommit connection (writes use explicit transactions)."""
    require()
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 5, "application_name": "archivist"}
    if password is not None:
        kwargs["password"] = password
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        raise ArchivistError(f"cannot connect to {where(url)}: {str(exc).strip().splitlines()[-1]}") from None


def with_vectors(conn: Any) -> Any:
    """``conn`` with pgvector's types registered (numpy arrays in and out)."""
    import psycopg
    from pgvector.psycopg import register_vector

    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        raise ArchivistError("the database has no pgvector extension: ask its administrator to install pgvector "
                             "(scripts/setup-postgres.sh does on Debian)") from None
    return conn
