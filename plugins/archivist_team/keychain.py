"""Database passwords, in the operating system's keychain through ``keyring``; never in a file.

Like the remote plugin's keys: a keyring that keeps secrets in a plain file (or nowhere) is
refused unless the user chose it on purpose (``PYTHON_KEYRING_BACKEND``, or keyring's
config file). Without a keychain, libpq's own ways still work: ``PGPASSWORD``, a
``~/.pgpass`` file, or certificate and peer authentication.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archivist import ArchivistError

SERVICE = "archivist-team"
UNSAFE = {
    "keyring.backends.fail.Keyring": "keyring found no keychain on this system",
    "keyring.backends.null.Keyring": "keyring is set to keep nothing",
    "keyrings.alt.file.PlaintextKeyring": "the only keyring found keeps passwords in a plain file",
}
INSTEAD = ("unlock or install one (GNOME Keyring or KWallet on Linux; macOS and Windows have theirs), or leave "
           "the password out of the URL and give it to libpq another way (PGPASSWORD or ~/.pgpass)")


class NoKeychain(ArchivistError):
    """There is no keychain to keep a password in."""


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
    import keyring

    backend = keyring.get_keyring()
    parts = list(getattr(backend, "backends", None) or [backend])
    unsafe = [UNSAFE[_qualified(b)] for b in parts if _qualified(b) in UNSAFE]
    if unsafe and len(unsafe) == len(parts) and not _chosen_on_purpose():
        raise NoKeychain(f"{unsafe[0]}, and Archivist keeps database passwords only in a keychain: {INSTEAD}")
    return backend


def account(folder: Path, name: str) -> str:
    return f"{name} ({folder})"


def save(folder: Path, name: str, password: str) -> None:
    try:
        keychain().set_password(SERVICE, account(folder, name), password)
    except NoKeychain:
        raise
    except Exception as exc:  # noqa: BLE001 - keyring's errors vary by backend
        raise NoKeychain(f"the keychain refused the password ({type(exc).__name__}: {exc}); {INSTEAD}") from None


def load(folder: Path, name: str) -> str | None:
    try:
        password: str | None = keychain().get_password(SERVICE, account(folder, name))
        return password
    except NoKeychain:
        raise
    except Exception as exc:  # noqa: BLE001
        raise NoKeychain(f"the keychain would not give the password of {name} ({type(exc).__name__}: {exc})") from None


def forget(folder: Path, name: str) -> None:
    try:
        keychain().delete_password(SERVICE, account(folder, name))
    except Exception:  # noqa: BLE001 - nothing kept, or no keychain: nothing to forget
        pass
