"""User settings changed from inside the app, stored as JSON values by key.

``config.toml`` (see :mod:`archivist.config`) holds what must be known before the
database opens; everything a user toggles in the GUI or CLI lives here, so it is saved
with the same transactions as the rest of their data.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects.sqlite import insert

from archivist.store.database import Database
from archivist.store.models import Setting, utcnow


class Settings:
    """Key/value settings over one :class:`Database`; safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str, default: Any = None) -> Any:
        with self.db.session(write=False) as s:
            row = s.get(Setting, key)
            return default if row is None else row.value

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can hold) under ``key``, replacing any old one."""
        now = utcnow()
        statement = insert(Setting).values(key=key, value=value, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[Setting.key], set_={"value": value, "updated_at": now}
        )
        with self.db.session() as s:
            s.execute(statement)

    def delete(self, key: str) -> bool:
        """Forget ``key``, so :meth:`get` returns the default again."""
        with self.db.session() as s:
            # a DELETE's result is a CursorResult, which has the row count
            result = cast("CursorResult[Any]", s.execute(delete(Setting).where(Setting.key == key)))
            return bool(result.rowcount)

    def all(self) -> dict[str, Any]:
        with self.db.session(write=False) as s:
            return {row.key: row.value for row in s.scalars(select(Setting).order_by(Setting.key))}
