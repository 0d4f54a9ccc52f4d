"""The FAISS plugin's library passes the library contract every library must pass
(``archivist.testing.LibraryContract``), with the real encoder, FAISS and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

import archivist_faiss
from archivist import PluginContext
from archivist.testing import LibraryContract


class TestFaissLibrary(LibraryContract):
    @pytest.fixture()
    def library(self, faiss_home: Path):
        got: list = []
        archivist_faiss.register_libraries(got.append, PluginContext(home=faiss_home))
        [library] = got
        yield library
        library.close()
