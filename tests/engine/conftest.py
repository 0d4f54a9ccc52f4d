"""Fixtures for the engine tests: described machines, the catalog, a local hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_hub import FakeRepo, HubServer

MACHINES = Path(__file__).parent / "machines"
PHI3_REPO = "microsoft/Phi-3-mini-4k-instruct-onnx"
CPU_FOLDER = "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"


def machine(name: str):
    from archivist.engine.hardware import Hardware

    return Hardware.from_dict(json.loads((MACHINES / f"{name}.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def catalog():
    from archivist.engine.catalog import load_catalog

    return load_catalog()


def phi3_like_files() -> dict[str, bytes]:
    """A Phi-3-shaped repository made of small generated files (deterministic bytes)."""
    # Bigger than the hub client's 10 MB read chunk, so a cut after the first chunk
    # leaves bytes on disk that a Range request can resume from.
    weights = (bytes(range(251)) * (24 * 2**20 // 251 + 1))[: 24 * 2**20]
    config = json.dumps({"model": {"context_length": 4096, "type": "phi3"}}).encode()
    files = {
        "README.md": b"# Phi-3 mini (test double)\n",
        f"{CPU_FOLDER}/genai_config.json": config,
        f"{CPU_FOLDER}/phi3-mini-4k-instruct-cpu-int4-rtn-block-32-acc-level-4.onnx": bytes(range(256)) * 9,
        f"{CPU_FOLDER}/phi3-mini-4k-instruct-cpu-int4-rtn-block-32-acc-level-4.onnx.data": weights,
        f"{CPU_FOLDER}/tokenizer.json": b'{"version": "1.0"}',
        "cuda/cuda-int4-rtn-block-32/genai_config.json": config,
        "cuda/cuda-int4-rtn-block-32/model.onnx.data": weights[: 2**20],
    }
    return files


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """The local hub on an ephemeral port, with HF_ENDPOINT pointing at it."""
    server = HubServer({PHI3_REPO: FakeRepo(files=phi3_like_files())}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # never the user's cache or token
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.stop()
