"""The models Archivist knows how to fetch, read from ``models/catalog.toml``.

The catalog is data (shipped as package data of ``archivist_models``) so that a new
variant is a reviewed TOML change, not code. It holds what the selection needs before
anything is downloaded: where a variant lives on the hub, which provider runs it, how
big its weights are and the architecture figures that size its KV cache. Checksums are
deliberately absent: the hub's own file metadata at download time is the source of truth.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from archivist.errors import ArchivistError

PROVIDER_NAMES = {"cpu": "CPU", "cuda": "CUDA", "dml": "DirectML"}


class UnknownModel(ArchivistError):
    """An id that names no catalog model or variant."""


@dataclass(frozen=True)
class Variant:
    """One published build of a model for one provider and precision."""

    id: str
    model_id: str
    provider: str  # "cpu", "cuda" or "dml": onnxruntime-genai's names
    precision: str  # "int4" or "fp16"
    quantization: str
    weights_bytes: int
    download_bytes: int
    kv_bytes: int
    repo: str = ""
    subfolder: str = ""
    source: str = "hub"  # "hub" (downloaded) or "built" (made offline by a recipe)

    @property
    def label(self) -> str:
        """Short human name of the build: "CUDA int4"."""
        return f"{PROVIDER_NAMES.get(self.provider, self.provider)} {self.precision}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Model:
    """A model of the family, with the figures its memory estimate needs."""

    id: str
    name: str
    params_b: float
    context_length: int
    licence: str
    rank: int
    layers: int
    kv_heads: int
    head_dim: int
    variants: tuple[Variant, ...] = field(default_factory=tuple)

    def kv_cache_bytes(self, variant: Variant, tokens: int) -> int:
        """Bytes of K and V for ``tokens`` of context, at the variant's element size."""
        return 2 * self.layers * self.kv_heads * self.head_dim * variant.kv_bytes * tokens

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["variants"] = [v.to_dict() for v in self.variants]
        return data


@dataclass(frozen=True)
class Catalog:
    """Every known model, best first; look-ups by model or variant id."""

    models: tuple[Model, ...]
    default_context: int = 4096

    def variants(self) -> list[Variant]:
        return [v for m in self.models for v in m.variants]

    def model(self, model_id: str) -> Model:
        for m in self.models:
            if m.id == model_id:
                return m
        raise UnknownModel(f"no catalog model is called {model_id!r} (see `archivist models list --all`)")

    def variant(self, variant_id: str) -> Variant:
        for v in self.variants():
            if v.id == variant_id:
                return v
        raise UnknownModel(
            f"no catalog variant is called {variant_id!r} (see `archivist models list --all`)"
        )

    def model_of(self, variant: Variant) -> Model:
        return self.model(variant.model_id)

    def to_dict(self) -> dict[str, Any]:
        return {"default_context": self.default_context, "models": [m.to_dict() for m in self.models]}


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Build a :class:`Catalog` from the TOML's dict, checking what selection relies on."""
    models = []
    seen: set[str] = set()
    for entry in data.get("model", []):
        entry = dict(entry)
        raw_variants = entry.pop("variant", [])
        variants = []
        for raw in raw_variants:
            variant = Variant(model_id=entry["id"], **raw)
            if variant.id in seen:
                raise ArchivistError(f"catalog: variant id {variant.id!r} appears twice")
            if variant.provider not in PROVIDER_NAMES:
                raise ArchivistError(f"catalog: {variant.id} has unknown provider {variant.provider!r}")
            if variant.source == "hub" and not (variant.repo and variant.subfolder):
                raise ArchivistError(f"catalog: {variant.id} comes from the hub but names no repo/subfolder")
            seen.add(variant.id)
            variants.append(variant)
        models.append(Model(variants=tuple(variants), **entry))
    models.sort(key=lambda m: -m.rank)
    return Catalog(models=tuple(models), default_context=int(data.get("default_context", 4096)))


def load_catalog(path: Path | None = None) -> Catalog:
    """The shipped catalog (``archivist_models/catalog.toml``), or the TOML at ``path``."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("archivist_models").joinpath("catalog.toml").read_text(encoding="utf-8")
    return parse_catalog(tomllib.loads(text))
