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

from archivist.errors import ArchivistError

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


# Sections of config.toml that Archivist and its built-in plugins read as tables.
CONFIG_TABLES = ("plugins", "retrieval", "safety")
REPAIR_HINT = "run `archivist doctor --repair`"


class DamagedFile(ArchivistError):
    """A file of the home folder is damaged; the message says which, and ``REPAIR_HINT``."""


def read_config(paths: Paths) -> dict[str, Any]:
    """Settings from ``config.toml`` in the home folder, if the user wrote one.

    Never raises: a file that is not valid TOML gives the defaults, and a section that is
    not a table is left out; :func:`config_problems` says what was wrong, in a line each.
    """
    return load_config(paths)[0]


def config_problems(paths: Paths) -> list[str]:
    """What is wrong with ``config.toml``, one line each naming the file (and the line)."""
    return load_config(paths)[1]


def load_config(paths: Paths) -> tuple[dict[str, Any], list[str]]:
    """The settings :func:`read_config` gives, and the problems :func:`config_problems` lists."""
    path = paths.config_file
    if not path.exists():
        return {}, []
    try:
        with path.open("rb") as fh:
            settings = tomllib.load(fh)
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        what = "is not valid TOML" if isinstance(exc, tomllib.TOMLDecodeError) else "cannot be read"
        return {}, [f"{path} {what} ({exc}): Archivist uses the default settings; fix it, or "
                    f"{REPAIR_HINT} to move it aside"]
    problems = []
    for key in CONFIG_TABLES:
        if key in settings and not isinstance(settings[key], dict):
            value = settings.pop(key)
            problems.append(f"{path}: `{key}` must be a section ([{key}]), not {type(value).__name__} "
                            f"{value!r:.40}: Archivist ignores it; fix it, or {REPAIR_HINT} to move the "
                            "file aside")
    return settings, problems


def read_disabled_plugins(paths: Paths) -> set[str]:
    """Plugins the user switched off. A plain file, read before anything heavy loads,
    and one a user can edit by hand when a plugin keeps the app from starting."""
    try:
        data = json.loads(paths.plugin_state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()  # plugin_state_problems says so
    names = data.get("disabled", []) if isinstance(data, dict) else []
    return {str(n) for n in names} if isinstance(names, list) else set()


def plugin_state_problems(paths: Paths) -> list[str]:
    """What is wrong with ``plugins.json`` (unreadable: every plugin is on), a line each."""
    path = paths.plugin_state
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        why = f"it cannot be read ({exc})"
    else:
        if isinstance(data, dict) and isinstance(data.get("disabled", []), list):
            return []
        why = 'it is not {"disabled": [plugin names]}'
    return [f"{path}, where the plugins you switched off are kept, is damaged ({why}), so every "
            f"plugin is on: {REPAIR_HINT} to set it aside"]


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
    except sqlite3.Error as exc:
        if is_damaged_sqlite(exc):  # not a reason to answer with the wrong model: say so
            raise database_damaged(paths.database) from exc
        return default
    if row is None:
        return default
    if isinstance(row[0], (int, float)):
        return row[0]  # SQLite hands JSON numbers back as numbers (the column has JSON affinity)
    try:
        return json.loads(row[0])
    except (TypeError, ValueError):
        return default


SQLITE_CORRUPT = 11  # SQLite's primary result codes for a damaged file
SQLITE_NOTADB = 26


def is_damaged_sqlite(exc: BaseException) -> bool:
    """Whether ``exc`` (sqlite3's, or SQLAlchemy's wrapping it) says the file is damaged:
    "database disk image is malformed", "file is not a database". A locked or read-only
    file is not damaged."""
    inner = getattr(exc, "orig", None) or exc
    code = getattr(inner, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    text = str(inner)
    return "malformed" in text or "not a database" in text


def database_damaged(path: Path) -> DamagedFile:
    """The one-line error for a damaged ``archivist.db``."""
    return DamagedFile(f"the database of your conversations and settings at {path} is damaged: {REPAIR_HINT}")
