"""Fixtures for the retrieval plugin's tests: the real ONNX encoder, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist_models.embedder import RECIPE_VERSION, build_embedder
from archivist_models.embeddings import Embedder

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ROOT.parent / "shared" / "data" / "formats"
WHEELS = ROOT / ".cache" / "wheels"


def formats_dir() -> Path:
    if not FORMATS.is_dir():
        pytest.skip(f"{FORMATS} is absent (the shared test data is not checked out beside the repo)")
    return FORMATS


@pytest.fixture(scope="session")
def embedder_path() -> Path:
    dest = ROOT / ".cache" / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}"
    return build_embedder(dest, WHEELS)


@pytest.fixture(scope="session")
def embedder(embedder_path: Path) -> Embedder:
    return Embedder(embedder_path)


@pytest.fixture
def faiss_home(tmp_path: Path, embedder_path: Path) -> Path:
    """A home folder whose models folder points at the session's encoder."""
    h = tmp_path / "home"
    (h / "models").mkdir(parents=True)
    (h / "models" / "embedder-minilm-l6-v2").symlink_to(embedder_path, target_is_directory=True)
    return h


@pytest.fixture
def make_index(faiss_home: Path, embedder: Embedder):
    from archivist_faiss.index import open_index

    opened = []

    def make(**kwargs):
        kwargs.setdefault("embedder", embedder)
        ix = open_index(faiss_home, **kwargs)
        opened.append(ix)
        return ix

    yield make
    for ix in opened:
        ix.close()
