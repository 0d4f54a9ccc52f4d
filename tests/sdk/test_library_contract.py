"""The library contract (``archivist.testing.LibraryContract``) on a library written in a
test: what a third-party library must do, and that the suite asks no more than that."""

from __future__ import annotations

from pathlib import Path

import pytest
from memory_library import MemoryLibrary

from archivist.testing import LibraryContract


class TestMemoryLibrary(LibraryContract):
    @pytest.fixture()
    def library(self, tmp_path: Path) -> MemoryLibrary:
        folder = tmp_path / "memory-data"
        folder.mkdir()
        return MemoryLibrary(folder)
