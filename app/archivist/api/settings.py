"""What the API server may do: its address, whether it wants a key, CORS, and its limits.

Defaults are the safe ones: loopback only, no CORS, small requests, a short queue. The
``[serve]`` table of ``config.toml`` and ``archivist serve``'s options change them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1,
    ``localhost``). ``0.0.0.0`` and ``::`` listen on every interface: not loopback."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class ServeSettings:
    """The server's address and limits. ``require_key`` is forced on off loopback."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Ask every request for the API key even on loopback (off loopback it is always asked).
    require_key: bool = False
    # Origins a browser page may call the API from (CORS); empty: none, the default.
    cors_origins: tuple[str, ...] = ()
    # A request body larger than this is refused with 413 before it is parsed.
    max_body_bytes: int = 1_000_000
    # max_tokens when a request gives none, and the most one may ask for.
    default_max_tokens: int = 512
    max_tokens: int = 2048
    # Messages in one chat request; inputs in one embeddings request; passages in one search.
    max_messages: int = 256
    max_inputs: int = 256
    max_input_chars: int = 20_000
    max_search_k: int = 50
    # Requests waiting behind the one generating; one more is refused with 429.
    max_queue: int = 8
    # Seconds a request may wait for its turn before it is refused with 503.
    queue_timeout_s: float = 300.0
    # Connections uvicorn accepts at once; beyond it answers 503 itself.
    max_connections: int = 64
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def needs_key(self) -> bool:
        return self.require_key or not self.loopback

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> ServeSettings:
        """The ``[serve]`` table of ``config.toml`` (keys named as the fields), then
        ``overrides`` (the command line's options; None leaves a value as it is). An
        unknown key or a value of the wrong type is ignored with a warning."""
        table = config.get("serve", {})
        values: dict[str, Any] = {}
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        defaults = cls()
        if isinstance(table, dict):
            for key, value in table.items():
                if key not in fields:
                    log.warning("ignoring serve.%s in config.toml: no such setting", key)
                    continue
                default = getattr(defaults, key)
                if key == "cors_origins" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                    values[key] = tuple(value)
                elif isinstance(default, bool):
                    if isinstance(value, bool):
                        values[key] = value
                    else:
                        log.warning("ignoring serve.%s in config.toml: not true or false", key)
                elif isinstance(default, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
                    if value <= 0:
                        log.warning("ignoring serve.%s in config.toml: must be positive", key)
                    else:
                        values[key] = type(default)(value)
                elif isinstance(default, str) and isinstance(value, str):
                    values[key] = value
                else:
                    log.warning("ignoring serve.%s = %r in config.toml: wrong type", key, value)
        for key, value in overrides.items():
            if value is not None:
                values[key] = tuple(value) if key == "cors_origins" else value
        return cls(**values)
