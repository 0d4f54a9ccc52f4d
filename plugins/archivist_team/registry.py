"""The collections this home added: ``<home>/plugins/team/collections.json``, no passwords.

Each entry is a name, the PostgreSQL URL without its password, and whether a password is
in the keychain (service ``archivist-team``, :mod:`archivist_team.keychain`). The file is
written to a temporary name and renamed, so it is never half written.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from archivist import ArchivistError

FILE = "collections.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    keychain: bool = False


# The name that chooses the user's own library when they pick which collections answer
# (archivist ask --collection library): a collection cannot take it.
RESERVED = "library"


def check_name(name: str) -> str:
    if name == RESERVED:
        raise ArchivistError(f"{name!r} names your own library when you choose which collections answer "
                             "(archivist ask --collection library): give the collection another name")
    if not _NAME.match(name):
        raise ArchivistError(f"{name!r} is not a collection name: use letters, digits, '_', '.' or '-' "
                             "(at most 63, starting with a letter or digit)")
    return name


class Registry:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE

    def entries(self) -> list[Entry]:
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ArchivistError(f"cannot read {self.path}: {exc}") from None
        return [Entry(str(e["name"]), str(e["url"]), bool(e.get("keychain"))) for e in data.get("collections", [])]

    def get(self, name: str) -> Entry:
        for entry in self.entries():
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.entries()) or "none yet"
        raise ArchivistError(f"no collection named {name!r} was added (added: {known}); "
                             "add it with `archivist collections add NAME postgresql://...`")

    def put(self, entry: Entry) -> None:
        self._write([e for e in self.entries() if e.name != entry.name] + [entry])

    def remove(self, name: str) -> Entry:
        entry = self.get(name)
        self._write([e for e in self.entries() if e.name != name])
        return entry

    def _write(self, entries: list[Entry]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"collections": [asdict(e) for e in sorted(entries, key=lambda e: e.name)]}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
