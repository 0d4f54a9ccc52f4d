"""Which catalog variant this machine should run, and a sentence of why for each option.

:func:`recommend` is pure: a :class:`~archivist.engine.hardware.Hardware` (probed or
described in JSON), the :class:`~archivist.engine.catalog.Catalog` and the installed
onnxruntime-genai build go in; a :class:`Recommendation` comes out. That keeps every rule
testable with described machines and lets ``doctor --assume-hardware`` explain the choice
for a machine the helper is not sitting at.

The rules, in order:

1. Devices: a Windows GPU that takes Direct3D 12 runs DirectML; an NVIDIA GPU runs CUDA
   (on Windows only when the CUDA build is the one installed, since DirectML needs no
   CUDA toolkit); the CPU runs the int4 builds everywhere. GPUs come first.
2. Memory: a variant fits when weights + KV cache for the context + a margin fit the
   budget: 90 % of dedicated VRAM, half the shared memory for an integrated GPU, or RAM
   minus 1.5 GB for the system on the CPU.
3. On the first device where anything fits, the best model (catalog rank) wins, then the
   better precision (fp16 over int4). A device is only left for the next when nothing fits.
4. What the installed build cannot run is listed with the exact install that would.

What happens when the chosen model then fails to load is :mod:`archivist.engine.fallback`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from archivist.engine.catalog import PROVIDER_NAMES, Catalog, Model, Variant
from archivist.engine.hardware import Gpu, Hardware
from archivist.errors import ArchivistError

GiB = 2**30
CPU_RESERVE = int(1.5 * GiB)  # left to the OS and the app itself
RUNTIME_OVERHEAD = int(0.5 * GiB)  # onnxruntime's arenas and buffers
WEIGHTS_MARGIN = 0.05  # and 5 % of the weights on top
VRAM_SHARE = 0.9
SHORT_CONTEXT = 2048  # the shortest context worth suggesting: RAG prompts need room
PRECISION_ORDER = {"fp16": 2, "int4": 1}
BUILD_PROVIDERS = {"cpu": ["cpu"], "cuda": ["cuda", "cpu"], "directml": ["dml", "cpu"]}
PACKAGES = {"cuda": "onnxruntime-genai-cuda", "dml": "onnxruntime-genai-directml", "cpu": "onnxruntime-genai"}
EXTRAS = {"cuda": "cuda", "dml": "directml", "cpu": "cpu"}
BUILD_OF_PROVIDER = {"cuda": "CUDA", "dml": "DirectML", "cpu": "CPU"}
# Decoding on a CPU reads every weight once per token, so its speed is bounded by how fast
# the cores can stream int4 weights and by memory bandwidth. Conservative figures: ~3 GB/s
# per logical core (the built-in model measured 5 GB/s on one Zen 3 core, a small model
# that partly sits in cache), 25 GB/s for dual-channel desktop memory, 60 GB/s for Apple
# Silicon's unified memory.
CPU_BYTES_PER_CORE_S = 3.0e9
CPU_MEMORY_BANDWIDTH = {"Darwin": 60e9}
CPU_MEMORY_BANDWIDTH_DEFAULT = 25e9
MIN_CPU_TOKENS_PER_S = 5.0  # about reading speed; slower and an answer feels stuck


def gb(n: int | float) -> str:
    """Bytes as the GB users read in their OS (GiB), one decimal."""
    return f"{n / GiB:.1f} GB"


@dataclass(frozen=True)
class Device:
    """Somewhere a model can run, with the memory it offers."""

    provider: str
    label: str  # "NVIDIA GeForce RTX 4070 12 GB" / "CPU (16 GB RAM)"
    budget_bytes: int
    note: str = ""


@dataclass
class Candidate:
    """One variant judged against one device."""

    variant_id: str
    model_id: str
    model_name: str
    provider: str
    precision: str
    device: str
    need_bytes: int
    budget_bytes: int
    fits: bool
    runnable: bool  # the installed build can use this provider
    installed: bool = False
    chosen: bool = False
    reason: str = ""
    tokens_per_s: float | None = None  # estimated decoding speed (CPU only)
    built_in: bool = False  # made offline by a recipe rather than downloaded

    @property
    def label(self) -> str:
        return f"{self.model_name} {PROVIDER_NAMES[self.provider]} {self.precision}"

    @property
    def too_slow(self) -> bool:
        return self.tokens_per_s is not None and self.tokens_per_s < MIN_CPU_TOKENS_PER_S

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Recommendation:
    """The choice, every alternative with its reason, and what to install to do better."""

    choice: Candidate | None
    alternatives: list[Candidate]
    advice: list[str] = field(default_factory=list)
    summary: str = ""
    context_tokens: int = 4096
    installed_build: str | None = None
    devices: list[Device] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "choice": self.choice.to_dict() if self.choice else None,
            "summary": self.summary,
            "advice": list(self.advice),
            "context_tokens": self.context_tokens,
            "installed_build": self.installed_build,
            "devices": [asdict(d) for d in self.devices],
            "alternatives": [c.to_dict() for c in self.alternatives],
        }


def need_bytes(model: Model, variant: Variant, context_tokens: int) -> int:
    """Memory to run ``variant``: weights, KV cache for ``context_tokens``, and a margin."""
    tokens = min(context_tokens, model.context_length)
    weights = variant.weights_bytes
    return int(weights * (1 + WEIGHTS_MARGIN) + model.kv_cache_bytes(variant, tokens) + RUNTIME_OVERHEAD)


def devices(hw: Hardware, installed_build: str | None) -> list[Device]:
    """Where this machine could run a model, best first (the build is not checked here)."""
    found: list[Device] = []
    windows = hw.os == "Windows"
    gpus = sorted(hw.gpus, key=lambda g: -(g.memory_mb or 0))
    nvidia = [g for g in gpus if g.vendor == "NVIDIA" and g.memory_mb]
    dx12 = [g for g in gpus if windows and g.dx12 is not False and g.vendor not in ("Microsoft", "Apple")]
    if nvidia and (not windows or installed_build == "cuda"):
        found.append(Device("cuda", _gpu_label(nvidia[0]), int((nvidia[0].memory_mb or 0) * 2**20 * VRAM_SHARE)))
    if dx12:
        best = max(dx12, key=_gpu_budget)
        note = "integrated GPU: half its shared system memory counts" if best.integrated else ""
        found.append(Device("dml", _gpu_label(best), _gpu_budget(best), note))
    if nvidia and windows and installed_build != "cuda":  # still offered, for --provider cuda
        found.append(Device("cuda", _gpu_label(nvidia[0]), int((nvidia[0].memory_mb or 0) * 2**20 * VRAM_SHARE)))
    ram = (hw.ram_total_mb or 0) * 2**20
    simd = "NEON" if "neon" in hw.cpu_features else ("AVX-512" if "avx512f" in hw.cpu_features else
                                                     ("AVX2" if "avx2" in hw.cpu_features else ""))
    cpu_label = f"CPU{' ' + simd if simd else ''}, {gb(ram)} RAM" if ram else "CPU, RAM unknown"
    found.append(Device("cpu", cpu_label, max(ram - CPU_RESERVE, 0)))
    return found


def cpu_tokens_per_s(hw: Hardware, weights_bytes: int) -> float:
    """A rough decoding speed on ``hw``'s CPU: weights streamed once per token."""
    bandwidth = CPU_MEMORY_BANDWIDTH.get(hw.os, CPU_MEMORY_BANDWIDTH_DEFAULT)
    return min(max(hw.cores, 1) * CPU_BYTES_PER_CORE_S, bandwidth) / max(weights_bytes, 1)


def _gpu_budget(gpu: Gpu) -> int:
    if gpu.integrated:
        return int((gpu.shared_memory_mb or 0) * 2**20 * 0.5)
    return int((gpu.memory_mb or 0) * 2**20 * VRAM_SHARE)


def _gpu_label(gpu: Gpu) -> str:
    if gpu.integrated:
        return f"{gpu.name} (integrated, {gb((gpu.shared_memory_mb or 0) * 2**20)} shared)"
    return f"{gpu.name} {round((gpu.memory_mb or 0) / 1024)} GB"


def recommend(
    hardware: Hardware,
    catalog: Catalog,
    installed_build: str | None = None,
    *,
    context_tokens: int | None = None,
    installed: Iterable[str] = (),
    provider: str | None = None,
    model: str | None = None,
) -> Recommendation:
    """Rank what ``hardware`` can run from ``catalog``; see the module docstring for the rules.

    ``installed_build`` is "cpu", "cuda" or "directml" (default: the build the probe saw).
    ``provider`` and ``model`` (a catalog model or variant id) are the user's overrides:
    they narrow the options, and a forced variant that does not fit is still chosen, with
    a warning as its reason.
    """
    build = (installed_build or None) if installed_build is not None else hardware.genai_build
    context = context_tokens or catalog.default_context
    # Without any build the ideal is what to recommend (and the advice says what to install).
    runnable_providers = BUILD_PROVIDERS[build] if build in BUILD_PROVIDERS else list(PROVIDER_NAMES)
    installed_ids = set(installed)
    all_devices = devices(hardware, build)
    wanted = [d for d in all_devices if provider is None or d.provider == provider]
    if provider is not None and not wanted:
        raise ArchivistError(f"this machine has no device for provider {provider!r}")

    def judge(device: Device, m: Model, v: Variant) -> Candidate:
        need = need_bytes(m, v, context)
        # The default context is "up to": a model with a shorter window simply uses its own.
        long_enough = context_tokens is None or context <= m.context_length
        fits = need <= device.budget_bytes and long_enough
        runnable = v.provider in runnable_providers
        cand = Candidate(
            variant_id=v.id, model_id=m.id, model_name=m.name, provider=v.provider,
            precision=v.precision, device=device.label, need_bytes=need,
            budget_bytes=device.budget_bytes, fits=fits, runnable=runnable,
            installed=v.id in installed_ids, built_in=v.source == "built",
        )
        if device.provider == "cpu" and not cand.built_in:
            cand.tokens_per_s = round(cpu_tokens_per_s(hardware, v.weights_bytes), 1)
        verdict = "fits" if fits else "does not fit"
        if fits and cand.too_slow:
            verdict = (f"fits, but about {cand.tokens_per_s:g} tokens/s on {hardware.cores} cores "
                       f"(under {MIN_CPU_TOKENS_PER_S:g}, slower than reading)")
        if not long_enough:
            verdict = f"its context is only {m.context_length} tokens, {context} asked"
        cand.reason = f"{device.label}: {cand.label} needs {gb(need)} of {gb(device.budget_bytes)} usable → {verdict}"
        if fits and not runnable:
            cand.reason += f", but the installed {BUILD_OF_PROVIDER.get(_provider_of_build(build), 'no')} build cannot use {PROVIDER_NAMES[v.provider]}"
        return cand

    def pick(devs: Sequence[Device], only_runnable: bool) -> tuple[Candidate | None, list[Candidate]]:
        judged: list[Candidate] = []
        chosen: Candidate | None = None
        for device in devs:
            options = [(m, v) for m in catalog.models for v in m.variants if v.provider == device.provider
                       and (model is None or model in (m.id, v.id))]
            options.sort(key=lambda mv: (-mv[0].rank, -PRECISION_ORDER.get(mv[1].precision, 0)))
            here = [judge(device, m, v) for m, v in options]
            judged.extend(here)
            if chosen is None:
                chosen = _best_on_device([c for c in here if c.fits and (c.runnable or not only_runnable)])
        return chosen, judged

    choice, alternatives = pick(wanted, only_runnable=True)
    ideal, _ = pick(wanted, only_runnable=False)
    forced = False
    if choice is None and model is not None:
        forced_options = [c for c in alternatives if c.runnable] or alternatives
        if forced_options:
            choice, forced = forced_options[0], True
            choice.reason += " (chosen anyway because you asked for it: expect it to fail or swap)"
    if choice is not None:
        choice.chosen = True
    advice: list[str] = []
    if build is None:
        advice.append("onnxruntime-genai is not installed: " + install_command(ideal.provider if ideal else "cpu", None))
    elif ideal is not None and not ideal.runnable:
        what = _device_kind(hardware, ideal.provider)
        advice.append(
            f"{what} found but the {BUILD_OF_PROVIDER[_provider_of_build(build)]} build of onnxruntime-genai "
            f"is installed: {ideal.label} would run with {install_command(ideal.provider, build)}"
        )
    if choice is not None and not forced and context > SHORT_CONTEXT:
        advice.extend(_shorter_context_advice(catalog, alternatives, choice))
    rec = Recommendation(choice, alternatives, advice, context_tokens=context,
                         installed_build=build, devices=all_devices)
    rec.summary = _summary(rec, forced)
    return rec


def _best_on_device(usable: list[Candidate]) -> Candidate | None:
    """The best-ranked usable candidate, except that on a CPU a model too slow to read
    along gives way to a smaller one that is fast enough, or failing that to the fastest
    downloadable one (the built-in model only when nothing else fits: it is fast but weak)."""
    if not usable:
        return None
    downloadable = [c for c in usable if not c.built_in]
    if not downloadable or not any(c.too_slow for c in downloadable):
        return usable[0]
    fast = [c for c in downloadable if not c.too_slow]
    if fast:
        return fast[0]
    return max(downloadable, key=lambda c: c.tokens_per_s or 0.0)


def _shorter_context_advice(catalog: Catalog, alternatives: list[Candidate], choice: Candidate) -> list[str]:
    """When a better option misses only because of the KV cache, say which context would fit."""
    for cand in alternatives:
        if cand is choice:
            break
        if cand.fits or not cand.runnable:
            continue
        m = catalog.model(cand.model_id)
        v = catalog.variant(cand.variant_id)
        need = need_bytes(m, v, SHORT_CONTEXT)
        if need <= cand.budget_bytes:
            return [
                f"with a {SHORT_CONTEXT}-token context {cand.label} would fit {cand.device} "
                f"(needs {gb(need)}): archivist models recommend --context {SHORT_CONTEXT}"
            ]
    return []


def install_command(provider: str, build: str | None) -> str:
    """The exact pip line that gives ``provider``, replacing the installed build if any.

    The builds share one module name, so the old one must go first.
    """
    wanted = PACKAGES[provider]
    line = f"pip install {wanted}  (or: pip install 'archivist[{EXTRAS[provider]}]')"
    if build is not None:
        current = PACKAGES[_provider_of_build(build)]
        if current != wanted:
            line = f"pip uninstall -y {current} && " + line
    if provider == "cuda":
        line += "; it needs the CUDA 12 runtime and cuDNN 9"
    return line


def _provider_of_build(build: str | None) -> str:
    return {"cuda": "cuda", "directml": "dml", "cpu": "cpu"}.get(build or "", "cpu")


def _device_kind(hw: Hardware, provider: str) -> str:
    if provider == "cuda":
        return "NVIDIA GPU"
    if provider == "dml":
        vendors = sorted({g.vendor for g in hw.gpus if g.dx12 is not False and g.vendor not in ("Microsoft", "Apple")})
        return f"DirectX 12 GPU ({', '.join(vendors)})"
    return "CPU"


def _summary(rec: Recommendation, forced: bool) -> str:
    """One sentence: the device, the better options that did not fit, and the choice.

    "NVIDIA GeForce RTX 4070 12 GB: Phi-3 medium 128k fp16 needs 26.5 GB, int4 needs
    8.8 GB → CUDA int4 (Phi-3 medium 128k)".
    """
    choice = rec.choice
    if choice is None:
        if any(c.fits for c in rec.alternatives):
            return "what fits needs another onnxruntime-genai build (see the advice)"
        last = rec.alternatives[-1].reason if rec.alternatives else "no device found"
        return f"nothing in the catalog fits this machine's memory ({last})"
    if forced:
        return choice.reason
    on_device = [c for c in rec.alternatives if c.device == choice.device]
    skipped = on_device[: on_device.index(choice)]
    shown = skipped[:1] + [c for c in skipped[1:] if c.model_id == choice.model_id]
    parts: list[str] = []
    previous = ""
    for c in [*shown, choice]:
        name = "" if c.model_id == previous else f"{c.model_name} "
        part = f"{name}{c.precision} needs {gb(c.need_bytes)}"
        if c.tokens_per_s is not None and (c is choice or (c.fits and c.too_slow)):
            part += f" and runs at about {c.tokens_per_s:g} tokens/s"
        parts.append(part)
        previous = c.model_id
    prefix = ""
    gpus = [d for d in rec.devices if d.provider != "cpu" and d.label != choice.device]
    considered = {c.device for c in rec.alternatives}
    gpus = [d for d in gpus if d.label in considered]
    if choice.provider == "cpu" and gpus:
        gpu = gpus[0]
        if any(c.fits for c in rec.alternatives if c.device == gpu.label):
            prefix = f"the installed build cannot use {gpu.label}; "
        else:
            prefix = f"nothing fits {gpu.label} ({gb(gpu.budget_bytes)} usable); "
    return (f"{prefix}{choice.device} ({gb(choice.budget_bytes)} usable): {', '.join(parts)} → "
            f"{PROVIDER_NAMES[choice.provider]} {choice.precision} ({choice.model_name})")
