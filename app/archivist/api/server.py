"""Running the API: uvicorn in the foreground (``archivist serve``) or on a thread (the
window's Settings page, the tests), on a socket bound here so the port is known before
the first request, even when it was 0 ("any free port").
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from archivist.api import keys
from archivist.api.settings import ServeSettings
from archivist.errors import ArchivistError

if TYPE_CHECKING:
    from archivist.application import Application

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said out loud: asyncio sets TCP_NODELAY only on sockets whose proto is
    # TCP, and a socket made with proto 0 gave every kept-alive request a 40 ms stall
    # (Nagle's algorithm meeting delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if port:
            raise ArchivistError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program "
                                 "may use that port; choose another with --port") from None
        raise ArchivistError(f"cannot listen on {host} ({exc.strerror or exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ApiServer:
    """The API of ``app`` on ``settings``' address: :meth:`start` on a thread (then
    :meth:`stop`), or :meth:`run` in the foreground until Ctrl-C.

    ``key`` is the API key made now, when one was needed and none was stored (or
    ``new_key`` asked for one): the one time it can be shown; None otherwise.
    """

    def __init__(self, app: Application, settings: ServeSettings, *, new_key: bool = False) -> None:
        self.app = app
        self.key: str | None = None
        store = app.settings()
        if new_key or (settings.needs_key and keys.stored_digest(store) is None):
            self.key = keys.new_key(store)
        self.key_digest = keys.stored_digest(store)
        self.socket = bind(settings.host, settings.port)
        port = self.socket.getsockname()[1]
        self.settings = dataclasses.replace(settings, port=port)
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.api = self._make()

    @property
    def url(self) -> str:
        return self.settings.url

    def _make(self) -> Any:
        from archivist.api.routes import create_app

        return create_app(self.app, self.settings, self.key_digest)

    def _uvicorn(self) -> Any:
        import uvicorn

        config = uvicorn.Config(
            self.api,
            log_level="warning",
            access_log=False,
            limit_concurrency=self.settings.max_connections,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=3,
            lifespan="off",
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def run(self) -> None:
        """Serve in this thread until interrupted (uvicorn handles Ctrl-C)."""
        server = self._uvicorn()
        try:
            server.run(sockets=[self.socket])
        finally:
            self._shutdown()

    def start(self, ready_timeout_s: float = 10.0) -> ApiServer:
        """Serve on a daemon thread; return once it accepts connections."""
        server = self._uvicorn()
        self._thread = threading.Thread(target=lambda: server.run(sockets=[self.socket]),
                                        name="archivist-api-server", daemon=True)
        self._thread.start()
        waited = threading.Event()
        for _ in range(int(ready_timeout_s / 0.02)):
            if server.started or not self._thread.is_alive():
                break
            waited.wait(0.02)
        if not server.started:
            self.stop()
            raise ArchivistError("the API server did not start")
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting requests, stop the answers being written, and wait for uvicorn."""
        if self._server is not None:
            self._server.should_exit = True
        self.api.state.server.stop_turns()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._shutdown()

    def _shutdown(self) -> None:
        self.api.state.server.stop_turns()
        try:
            self.socket.close()
        except OSError:
            pass
