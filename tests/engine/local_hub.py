"""A local stand-in for the Hugging Face hub: enough of its file protocol for huggingface_hub.

It serves what the hub's own client asks for (read from huggingface_hub's source):

- ``GET /api/models/{repo}/revision/{rev}``: model info with ``sha`` and ``siblings``;
- ``GET /api/models/{repo}/tree/{rev}/{path}``: the listing, with git blob ids and, for
  LFS files, ``lfs.oid`` (sha256) and ``lfs.size``;
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``,
  ``ETag`` (sha256 for LFS files, the blob id otherwise), ``X-Linked-Size``/``-Etag`` for
  LFS files, and ``Range`` support (206 + ``Content-Range``).

Faults are injected per file: ``cut_after[path] = n`` sends the full ``Content-Length``
but only ``n`` bytes on the first GET, then drops the connection; ``corrupt[path] =
bytes`` serves other bytes of the same size than the listing's checksum describes.
Every request is logged in ``requests`` so tests can see resumes (``Range``) and skips.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 1024  # files this big are "LFS" files, as *.onnx and *.onnx.data are on the hub


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    corrupt: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)


def blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HubServer:
    """Start with :meth:`start`, point ``HF_ENDPOINT`` at :attr:`url`, :meth:`stop` after."""

    def __init__(self, repos: dict[str, FakeRepo]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def gets(self, suffix: str) -> list[str | None]:
        """The Range header of every GET of a file ending in ``suffix``."""
        return [r for m, p, r in self.requests if m == "GET" and "/resolve/" in p and p.endswith(suffix)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                with hub._lock:
                    hub.requests.append((self.command, path, self.headers.get("Range")))
                if path.startswith("/api/models/"):
                    return self._api(path[len("/api/models/"):])
                if "/resolve/" in path:
                    repo_id, _, rest = path.lstrip("/").partition("/resolve/")
                    revision, _, filename = rest.partition("/")
                    return self._file(repo_id, revision, filename, head)
                self._error(404, "EntryNotFound", "no such endpoint")

            def _repo(self, repo_id: str, revision: str) -> FakeRepo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", f"{repo_id} not found")
                    return None
                if revision not in ("main", repo.commit):
                    self._error(404, "RevisionNotFound", f"{revision} not found")
                    return None
                return repo

            def _api(self, rest: str) -> None:
                if "/revision/" in rest:
                    repo_id, _, revision = rest.partition("/revision/")
                    repo = self._repo(repo_id, revision)
                    if repo:
                        self._json({"id": repo_id, "sha": repo.commit,
                                    "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
                    return
                if "/tree/" in rest:
                    repo_id, _, tail = rest.partition("/tree/")
                    revision, _, folder = tail.partition("/")
                    repo = self._repo(repo_id, revision)
                    if repo:
                        self._json(_listing(repo, folder.strip("/")))
                    return
                self._error(404, "EntryNotFound", "unknown api call")

            def _file(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
                repo = self._repo(repo_id, revision)
                if repo is None:
                    return
                if filename not in repo.files:
                    self._error(404, "EntryNotFound", f"{filename} not found")
                    return
                listed = repo.files[filename]
                data = repo.corrupt.get(filename, listed)
                lfs = len(listed) >= LFS_THRESHOLD
                etag = sha256(listed) if lfs else blob_id(listed)
                start = 0
                status = 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", repo.commit)
                if lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(listed)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if head:
                    return
                cut = repo.cut_after.pop(filename, None) if start == 0 else None
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the connection drops mid-file
                    return
                self.wfile.write(body)

            def _json(self, payload: object) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _error(self, status: int, code: str, message: str) -> None:
                raw = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


def _listing(repo: FakeRepo, folder: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    folders: set[str] = set()
    for path, data in sorted(repo.files.items()):
        if folder and not path.startswith(folder + "/"):
            continue
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if (not folder or parent.startswith(folder + "/")) and parent not in folders:
                folders.add(parent)
                entries.append({"type": "directory", "path": parent, "oid": blob_id(parent.encode()), "size": 0})
        entry: dict[str, object] = {"type": "file", "path": path, "size": len(data), "oid": blob_id(data)}
        if len(data) >= LFS_THRESHOLD:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n"
            entry.update(oid=blob_id(pointer.encode()),  # size stays the real file's, as on the hub
                         lfs={"oid": sha256(data), "size": len(data), "pointerSize": len(pointer)})
        entries.append(entry)
    return entries
