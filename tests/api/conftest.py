"""The API's tests start the real server (uvicorn, on a free loopback port, on a thread of
the test) and drive it with the official ``openai`` client: nothing is mocked at the
HTTP layer. The model behind it is the scripted one (``archivist.testing``) unless a test
is about the real model; a *slow* scripted model stands in for a long answer where a
test needs one to stop or queue behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Served, SlowBackend

from archivist.api.settings import ServeSettings
from archivist.testing import use_scripted_model


@pytest.fixture()
def serve() -> Iterator:
    """``serve(app, **settings)`` starts a server on a free loopback port; all stop after the test."""
    started: list[Served] = []

    def start(app, new_key: bool = False, **settings) -> Served:
        served = Served(app, ServeSettings(port=0, **settings), new_key=new_key)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture()
def served(scripted_app, serve) -> Served:
    return serve(scripted_app)


@pytest.fixture()
def slow_app(home: Path):
    from archivist.application import Application

    application = Application(home)
    use_scripted_model(application, SlowBackend())
    yield application
    application.close()


@pytest.fixture()
def slow(slow_app) -> SlowBackend:
    from archivist.testing import SCRIPTED

    backend = slow_app.host.pm.get_plugin(SCRIPTED)
    assert isinstance(backend, SlowBackend)
    return backend


@pytest.fixture()
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """keyrings.alt's file backend, in this test's folder, chosen on purpose (as a user
    would with PYTHON_KEYRING_BACKEND): the system keychain is left alone."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    data = tmp_path / "keyring-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    before = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(data / "keyring_pass.cfg")  # type: ignore[misc]
    keyring.set_keyring(backend)
    yield data / "keyring_pass.cfg"
    keyring.set_keyring(before)

