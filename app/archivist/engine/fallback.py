"""Loading the chosen model with fallback: when a load fails (libraries missing, out of
memory) walk on to the next installed variant, and say what happened and why.

:func:`fallback_plan` is the order for this machine (its installed models, its build's
providers), the one ``archivist doctor`` shows as the load order;
:func:`load_with_fallback` walks it. Which model to choose in the first place is
:mod:`archivist.engine.recommendation`'s (pure: hardware and catalog in, a choice out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from archivist.engine.catalog import Catalog
from archivist.engine.installed import variant_provider
from archivist.errors import ModelLoadError, ModelNotFound
from archivist.types import ModelInfo

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Attempt:
    model_id: str
    provider: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadOutcome:
    """What was loaded in the end, every attempt before it, and a message for the user."""

    model: Any
    info: ModelInfo
    provider: str
    attempts: list[Attempt]

    @property
    def fell_back(self) -> bool:
        return len(self.attempts) > 1

    @property
    def message(self) -> str:
        if not self.fell_back:
            return ""
        failed = "; ".join(f"{a.model_id} on {a.provider} failed ({a.error})" for a in self.attempts[:-1])
        return f"{failed}; using {self.info.id} on {self.provider} instead"


def fallback_chain(
    first: ModelInfo,
    provider: str | None,
    installed: Sequence[ModelInfo],
    runnable_providers: Sequence[str],
    catalog: Catalog | None = None,
) -> list[tuple[ModelInfo, str]]:
    """The order to try: ``first`` on ``provider``, then installed variants best first.

    Installed catalog variants are ordered by the catalog (rank, then GPU before CPU);
    each is tried on the provider it was built for, when the build can use it. Folders
    the catalog does not know (imported or built) are tried on the CPU last.
    """
    chain: list[tuple[ModelInfo, str]] = []
    first_provider = provider or variant_provider(first) or (runnable_providers[0] if runnable_providers else "cpu")
    chain.append((first, first_provider))
    ranks: dict[str, tuple[int, int]] = {}
    if catalog is not None:
        for m in catalog.models:
            for v in m.variants:
                ranks[v.id] = (-m.rank, 0 if v.provider != "cpu" else 1)
    others = []
    for info in installed:
        p = variant_provider(info) or "cpu"
        if p not in runnable_providers:
            continue
        others.append((ranks.get(info.id, (0, 2)), info, p))
    others.sort(key=lambda t: t[0])
    for _, info, p in others:
        if (info.path, p) not in {(i.path, q) for i, q in chain}:
            chain.append((info, p))
    if first_provider != "cpu" and "cpu" in runnable_providers and variant_provider(first) in (None, "cpu"):
        chain.insert(1, (first, "cpu"))  # a folder that runs anywhere: the CPU before another model
    return chain


def fallback_plan(first: ModelInfo, provider: str | None, models_dir: Path) -> list[tuple[ModelInfo, str]]:
    """:func:`fallback_chain` for this machine: its installed models and its build's providers."""
    from archivist.engine.catalog import load_catalog
    from archivist.engine.installed import installed_models
    from archivist.engine.runtime import available_providers

    return fallback_chain(first, provider, installed_models(models_dir), available_providers(), load_catalog())


def load_with_fallback(chain: Sequence[tuple[ModelInfo, str]], load: Callable[[ModelInfo, str], T]) -> LoadOutcome:
    """Try each (model, provider) of ``chain`` until one loads; raise with every reason if none does."""
    attempts: list[Attempt] = []
    for info, provider in chain:
        try:
            loaded = load(info, provider)
        except (ModelLoadError, ModelNotFound, MemoryError, OSError) as exc:
            reason = _why_it_failed(exc)
            log.info("could not load %s on %s: %s", info.id, provider, reason)
            attempts.append(Attempt(info.id, provider, reason))
            continue
        attempts.append(Attempt(info.id, provider))
        return LoadOutcome(loaded, info, provider, attempts)
    if not attempts:
        raise ModelNotFound("no installed model to load")
    raise ModelLoadError(
        "no installed model could be loaded: " + "; ".join(f"{a.model_id} on {a.provider}: {a.error}" for a in attempts)
    )


def _why_it_failed(exc: BaseException) -> str:
    """A short reason, classified from the runtime's own error (not our wrapper's text)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = str(cause).strip() or type(cause).__name__
    low = text.lower()
    if isinstance(cause, MemoryError) or "out of memory" in low or "failed to allocate" in low or "bad_alloc" in low:
        return f"out of memory ({text.splitlines()[0][:200]})"
    if any(k in low for k in ("cuda", "cudnn", "libcublas", "directml", "dml", "provider", ".so", ".dll")):
        return f"runtime library or provider missing ({text.splitlines()[0][:200]})"
    return text.splitlines()[0][:300]
