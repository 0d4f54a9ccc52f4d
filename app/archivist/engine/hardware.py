"""What this machine has, as a plain data object the model choice can reason about.

Each probe is optional and cheap; one that fails is recorded in ``problems`` instead of
stopping the app, because a missing driver library must never keep a user from the CPU
path. Selection logic takes a :class:`Hardware`, so it can be tested with any described
machine (``Hardware.from_dict``).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Gpu:
    name: str
    vendor: str
    memory_mb: int | None = None
    driver: str | None = None
    api: str = ""  # how it was seen: "nvml", "dxgi", "metal"


@dataclass
class Hardware:
    os: str
    arch: str
    cpu: str
    cores: int
    cpu_features: list[str] = field(default_factory=list)
    ram_total_mb: int | None = None
    ram_free_mb: int | None = None
    gpus: list[Gpu] = field(default_factory=list)
    apple_silicon: bool = False
    genai_package: str | None = None
    genai_providers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    probe_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Hardware":
        data = dict(data)
        data["gpus"] = [Gpu(**g) for g in data.get("gpus", [])]
        return cls(**data)


def probe() -> Hardware:
    """Probe this machine; never raises."""
    started = time.perf_counter()
    hw = Hardware(
        os=platform.system(),
        arch=platform.machine().lower(),
        cpu=platform.processor() or platform.machine(),
        cores=os.cpu_count() or 1,
    )
    for step in (_cpu, _memory, _nvidia, _apple, _genai):
        try:
            step(hw)
        except Exception as exc:  # every probe is optional
            hw.problems.append(f"{step.__name__.strip('_')} probe failed: {exc}")
    hw.probe_ms = round((time.perf_counter() - started) * 1000.0, 1)
    return hw


_FEATURES = ("avx", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma", "f16c", "neon", "asimd")


def _cpu(hw: Hardware) -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags: set[str] = set()
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and hw.cpu in ("", hw.arch, platform.machine()):
                hw.cpu = value.strip()
            elif key in ("flags", "Features"):
                flags.update(value.split())
        hw.cpu_features = [f for f in _FEATURES if f in flags]
        if "asimd" in flags and "neon" not in hw.cpu_features:
            hw.cpu_features.append("neon")
    elif hw.arch in ("arm64", "aarch64"):
        hw.cpu_features = ["neon"]


def _memory(hw: Hardware) -> None:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        values = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) // 1024
        hw.ram_total_mb = values.get("MemTotal")
        hw.ram_free_mb = values.get("MemAvailable")
        return
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        hw.ram_total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def _nvidia(hw: Hardware) -> None:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return
    try:
        pynvml.nvmlInit()
    except Exception:
        return  # no NVIDIA driver: nothing to report
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20
            hw.gpus.append(
                Gpu(
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    vendor="NVIDIA",
                    memory_mb=int(memory),
                    driver=driver.decode() if isinstance(driver, bytes) else str(driver),
                    api="nvml",
                )
            )
    finally:
        pynvml.nvmlShutdown()


def _apple(hw: Hardware) -> None:
    hw.apple_silicon = hw.os == "Darwin" and hw.arch == "arm64"


def _genai(hw: Hardware) -> None:
    from importlib import metadata

    for dist in ("onnxruntime-genai-cuda", "onnxruntime-genai-directml", "onnxruntime-genai"):
        try:
            hw.genai_package = f"{dist} {metadata.version(dist)}"
            break
        except metadata.PackageNotFoundError:
            continue
    if hw.genai_package is None:
        hw.problems.append("onnxruntime-genai is not installed: no model can run")
        return
    from archivist.engine.runtime import available_providers

    hw.genai_providers = available_providers()
