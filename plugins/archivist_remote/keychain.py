"""Server keys, in the operating system's keychain through ``keyring``; never in a file.

keyring picks a backend by itself. When the best it finds keeps secrets in a plain file
(``keyrings.alt``'s ``PlaintextKeyring``) or nowhere (its ``fail`` and ``null``
backends), a key is refused with what to do instead, unless the user chose that backend
on purpose (``PYTHON_KEYRING_BACKEND`` or keyring's own config file name it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archivist import ArchivistError

SERVICE = "archivist-remote"
# Backends that keep nothing, or keep it readable on disk: refused unless chosen on purpose.
UNSAFE = {
    "keyring.backends.fail.Keyring": "keyring found no keychain on this system",
    "keyring.backends.null.Keyring": "keyring is set to keep nothing",
    "keyrings.alt.file.PlaintextKeyring": "the only keyring found keeps keys in a plain file",
}


class NoKeychain(ArchivistError):
    """There is no keychain to keep a key in."""


def _qualified(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _chosen_on_purpose() -> bool:
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    try:
        from keyring.util import platform_

        return (Path(platform_.config_root()) / "keyringrc.cfg").is_file()
    except Exception:  # noqa: BLE001 - no config: keyring chose by itself
        return False


def keychain() -> Any:
    """keyring's backend, or :class:`NoKeychain` saying why there is none to use."""
    try:
        import keyring
    except ImportError:
        raise NoKeychain("the keyring package is not installed, so a key cannot be kept: install it "
                         "(pip install keyring), or give the key in an environment variable with "
                         "--key-env VAR") from None
    backend = keyring.get_keyring()
    parts = list(getattr(backend, "backends", None) or [backend])
    unsafe = [UNSAFE[_qualified(b)] for b in parts if _qualified(b) in UNSAFE]
    if unsafe and len(unsafe) == len(parts) and not _chosen_on_purpose():
        raise NoKeychain(f"{unsafe[0]}, and Archivist keeps keys only in a keychain: unlock or install one "
                         "(GNOME Keyring or KWallet on Linux; macOS and Windows have theirs), or give the key "
                         "in an environment variable with --key-env VAR")
    return backend


def account(folder: Path, name: str) -> str:
    """The keychain's account for server ``name`` of the home whose plugin folder is ``folder``."""
    return f"{name} ({folder})"


def save(folder: Path, name: str, key: str) -> None:
    try:
        keychain().set_password(SERVICE, account(folder, name), key)
    except NoKeychain:
        raise
    except Exception as exc:  # noqa: BLE001 - keyring's errors vary by backend
        raise NoKeychain(f"the keychain refused the key ({type(exc).__name__}: {exc})") from None


def load(folder: Path, name: str) -> str | None:
    try:
        return keychain().get_password(SERVICE, account(folder, name))
    except NoKeychain:
        raise
    except Exception as exc:  # noqa: BLE001
        raise NoKeychain(f"the keychain would not give the key of {name} ({type(exc).__name__}: {exc})") from None


def forget(folder: Path, name: str) -> None:
    try:
        keychain().delete_password(SERVICE, account(folder, name))
    except Exception:  # noqa: BLE001 - nothing kept, or no keychain: nothing to forget
        pass
