"""The API key: made here, shown once, kept only as its SHA-256 digest.

The key is 256 random bits, so a plain SHA-256 of it is as good as a slow password hash
(nobody can guess their way to a preimage) and costs a microsecond per request. The digest
lives in the home's settings (:data:`KEY_SETTING`); ``archivist serve --new-key`` and the
window's Settings page replace it, and the key they show is not kept anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Protocol

KEY_SETTING = "api.key_sha256"
KEY_PREFIX = "sk-archivist-"


class SettingStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(settings: SettingStore) -> str:
    """Make a key, keep its digest (replacing the old one), and return the key: the one
    time it exists outside the caller's hands."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    settings.set(KEY_SETTING, digest(key))
    return key


def stored_digest(settings: SettingStore) -> str | None:
    value = settings.get(KEY_SETTING, None)
    return str(value) if value else None


def matches(presented: str | None, expected_digest: str | None) -> bool:
    """Whether ``presented`` is the key whose digest is ``expected_digest`` (in constant time)."""
    if not presented or not expected_digest:
        return False
    return hmac.compare_digest(digest(presented), expected_digest)


def bearer(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
