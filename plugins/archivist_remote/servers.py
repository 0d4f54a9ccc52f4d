"""The servers the user added, kept in the plugin's data folder as JSON (never a key)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from archivist import ArchivistError

SERVERS_FILE = "servers.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class Server:
    """A server as added: its name (the model id users choose), base URL (ending in /v1),
    the model it serves, and where its key is ("keyring", "env" or "none")."""

    name: str
    url: str
    model: str
    key: str = "none"
    key_env: str | None = None
    context_length: int = DEFAULT_CONTEXT
    added_at: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise ArchivistError(f"{name!r} cannot name a server: use letters, digits, '.', '_' and '-' "
                             "(up to 64), starting with a letter or digit")
    return name


def base_url(url: str) -> str:
    """``url`` as the API's base: http(s), no query, ``/v1`` added when it has no path
    (``http://gpu-box:8000`` -> ``http://gpu-box:8000/v1``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ArchivistError(f"{url!r} is not a server address: give one like http://gpu-box:8000/v1")
    if parts.username or parts.password:
        raise ArchivistError("put the key in --key-prompt or --key-env, not in the address")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class ServerList:
    """The servers in ``folder/servers.json``; every change is written to a temporary file,
    flushed and renamed, so a crash never leaves half a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / SERVERS_FILE

    def all(self) -> list[Server]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ArchivistError(f"{self.path} cannot be read ({exc}): fix or delete it, then add "
                                 "the servers again") from None
        servers = []
        for entry in data.get("servers", []) if isinstance(data, dict) else []:
            try:
                servers.append(Server(**entry))
            except TypeError:
                continue  # a field this version does not know: skip the entry, keep the rest
        return servers

    def get(self, name: str) -> Server | None:
        return next((s for s in self.all() if s.name == name), None)

    def put(self, server: Server) -> None:
        servers = [s for s in self.all() if s.name != server.name] + [server]
        self._write(servers)

    def remove(self, name: str) -> Server:
        servers = self.all()
        found = next((s for s in servers if s.name == name), None)
        if found is None:
            known = ", ".join(s.name for s in servers) or "none"
            raise ArchivistError(f"no server called {name!r} (added: {known})")
        self._write([s for s in servers if s.name != name])
        return found

    def _write(self, servers: list[Server]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"servers": [asdict(s) for s in servers]}, indent=2)
        fd, tmp = tempfile.mkstemp(prefix=".servers-", suffix=".json", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
