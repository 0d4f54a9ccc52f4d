"""Where Archivist keeps its data, and the few settings read before the database opens.

Everything lives under one home folder so a user can back it up, move it or delete it
in one go: ``--home DIR`` wins, then ``ARCHIVIST_HOME``, then the platform's user data
folder (platformdirs). Nothing is written to the cache or config folders elsewhere.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP_NAME = "Archivist"
DEFAULT_MODEL_ID = "smollm2-135m-instruct"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: explicit argument, then ``ARCHIVIST_HOME``, then platformdirs."""
    if home:
        return Path(home).expanduser().resolve()
    env = os.environ.get("ARCHIVIST_HOME")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Paths:
    """The layout of a home folder."""

    home: Path

    @property
    def database(self) -> Path:
        return self.home / "archivist.db"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def index(self) -> Path:
        return self.home / "index"

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def plugin_state(self) -> Path:
        return self.home / "plugins.json"

    def ensure(self) -> Paths:
        for folder in (self.home, self.models, self.index):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def read_config(paths: Paths) -> dict[str, Any]:
    """Settings from ``config.toml`` in the home folder, if the user wrote one."""
    if not paths.config_file.exists():
        return {}
    with paths.config_file.open("rb") as fh:
        return tomllib.load(fh)


def read_disabled_plugins(paths: Paths) -> set[str]:
    """Plugins the user switched off. A plain file, read before anything heavy loads,
    and one a user can edit by hand when a plugin keeps the app from starting."""
    try:
        data = json.loads(paths.plugin_state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names = data.get("disabled", []) if isinstance(data, dict) else []
    return {str(n) for n in names}


def write_disabled_plugins(paths: Paths, names: set[str]) -> None:
    """Save the switched-off plugins atomically (temporary file, flush, rename)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    tmp = paths.plugin_state.with_suffix(".json.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump({"disabled": sorted(names)}, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, paths.plugin_state)


def peek_setting(paths: Paths, key: str, default: Any = None) -> Any:
    """One stored setting, read with the standard library's sqlite3.

    For the first question's fast path: the database proper (SQLAlchemy, whose import
    alone is a third of a second) is opened only when the answer is saved. Any problem
    (no file yet, an older schema) gives ``default``; the store is the authority.
    """
    if not paths.database.exists():
        return default
    import sqlite3

    try:
        with sqlite3.connect(f"file:{paths.database}?mode=ro", uri=True, timeout=1.0) as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return default
    if row is None:
        return default
    if isinstance(row[0], (int, float)):
        return row[0]  # SQLite hands JSON numbers back as numbers (the column has JSON affinity)
    try:
        return json.loads(row[0])
    except (TypeError, ValueError):
        return default
