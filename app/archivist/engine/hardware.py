"""What this machine has, as a plain data object the model choice can reason about.

Each probe is optional and cheap; one that fails is recorded in ``problems`` instead of
stopping the app, because a missing driver library must never keep a user from the CPU
path. Selection logic takes a :class:`Hardware`, so it can be tested with any described
machine (``Hardware.from_dict``, the JSON files under ``tests/engine/machines``).

The whole probe stays well under 300 ms: nothing here imports onnxruntime itself (that
alone costs ~300 ms); the providers onnxruntime-genai can use are read from the shared
libraries its wheel ships, and ``probe(full=True)`` (used by ``doctor``) also asks
onnxruntime when the user is prepared to wait.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

VENDORS = {0x10DE: "NVIDIA", 0x1002: "AMD", 0x1022: "AMD", 0x8086: "Intel", 0x1414: "Microsoft", 0x5143: "Qualcomm"}
GENAI_BUILDS = {
    "onnxruntime-genai-cuda": "cuda",
    "onnxruntime-genai-directml": "directml",
    "onnxruntime-genai": "cpu",
}


@dataclass
class Gpu:
    """A GPU as one API saw it. ``memory_mb`` is dedicated VRAM (None when unknown)."""

    name: str
    vendor: str
    memory_mb: int | None = None
    driver: str | None = None
    api: str = ""  # how it was seen: "nvml", "dxgi", "metal"
    shared_memory_mb: int | None = None  # system memory the GPU may borrow (DXGI)
    integrated: bool = False
    dx12: bool | None = None  # DirectX 12 capable (Windows only; None = not checked)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gpu:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Hardware:
    """One machine: what a described machine in a JSON file can say, all optional but OS."""

    os: str
    arch: str
    cpu: str = ""
    cores: int = 1
    cpu_features: list[str] = field(default_factory=list)
    ram_total_mb: int | None = None
    ram_free_mb: int | None = None
    gpus: list[Gpu] = field(default_factory=list)
    apple_silicon: bool = False
    genai_package: str | None = None  # "onnxruntime-genai-cuda 0.8.3"
    genai_providers: list[str] = field(default_factory=list)  # what the build can use here
    ort_providers: list[str] = field(default_factory=list)  # onnxruntime's names
    problems: list[str] = field(default_factory=list)
    probe_ms: float = 0.0
    description: str = ""  # a described machine's own label

    @property
    def genai_build(self) -> str | None:
        """``"cpu"``, ``"cuda"`` or ``"directml"``: which onnxruntime-genai wheel is installed."""
        if not self.genai_package:
            return None
        return GENAI_BUILDS.get(self.genai_package.split()[0])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hardware:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["gpus"] = [Gpu.from_dict(g) for g in data.get("gpus", [])]
        return cls(**data)


def probe(full: bool = False) -> Hardware:
    """Probe this machine; never raises. ``full`` also imports onnxruntime (~0.3 s)."""
    started = time.perf_counter()
    hw = Hardware(
        os=platform.system(),
        arch=platform.machine().lower(),
        cpu=platform.processor() or platform.machine(),
        cores=os.cpu_count() or 1,
    )
    names = ["cpu", "memory", "nvidia", "dxgi", "apple", "genai"] + (["onnxruntime"] if full else [])
    for name in names:
        try:
            globals()[f"_{name}"](hw)
        except Exception as exc:  # every probe is optional
            hw.problems.append(f"{name} probe failed: {type(exc).__name__}: {exc}")
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
    elif sys.platform == "win32":
        _cpu_windows(hw)
    elif sys.platform == "darwin":
        hw.cpu = _sysctl("machdep.cpu.brand_string") or hw.cpu
        if hw.arch == "arm64":
            hw.cpu_features = ["neon"]
        else:
            for name, flag in (("avx2", "hw.optional.avx2_0"), ("avx512f", "hw.optional.avx512f")):
                if _sysctl(flag) == "1":
                    hw.cpu_features.append(name)
    elif hw.arch in ("arm64", "aarch64"):
        hw.cpu_features = ["neon"]


def _cpu_windows(hw: Hardware) -> None:
    if sys.platform != "win32":  # called only there; this also tells mypy the rest is Windows code
        return
    import ctypes
    import winreg

    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
        hw.cpu = str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
    present = ctypes.windll.kernel32.IsProcessorFeaturePresent
    # PF_AVX_INSTRUCTIONS_AVAILABLE=39, PF_AVX2=40, PF_AVX512F=41, PF_ARM_NEON=19
    for name, feature in (("avx", 39), ("avx2", 40), ("avx512f", 41), ("neon", 19)):
        if present(feature):
            hw.cpu_features.append(name)


def _sysctl(name: str) -> str | None:
    done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
    return done.stdout.strip() or None if done.returncode == 0 else None


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
    if sys.platform == "win32":
        import ctypes

        class MemoryStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            hw.ram_total_mb = status.ullTotalPhys // 2**20
            hw.ram_free_mb = status.ullAvailPhys // 2**20
        return
    if sys.platform == "darwin":
        total = _sysctl("hw.memsize")
        hw.ram_total_mb = int(total) // 2**20 if total else None
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


def _dxgi(hw: Hardware) -> None:
    """Windows: the DXGI adapters, their dedicated VRAM, and whether D3D12 accepts them."""
    if sys.platform != "win32":
        return
    for adapter in _dxgi_adapters():
        if adapter["flags"] & 2:  # DXGI_ADAPTER_FLAG_SOFTWARE: the Basic Render Driver
            continue
        memory_mb = adapter["dedicated"] // 2**20
        gpu = Gpu(
            name=adapter["name"],
            vendor=VENDORS.get(adapter["vendor_id"], f"0x{adapter['vendor_id']:04x}"),
            memory_mb=memory_mb,
            api="dxgi",
            shared_memory_mb=adapter["shared"] // 2**20,
            integrated=memory_mb < 1024,
            dx12=adapter["dx12"],
        )
        twin = next((g for g in hw.gpus if g.api == "nvml" and g.name == gpu.name), None)
        if twin is not None:  # the same NVIDIA card seen twice: keep NVML's driver, add DXGI's facts
            twin.shared_memory_mb, twin.dx12 = gpu.shared_memory_mb, gpu.dx12
        else:
            hw.gpus.append(gpu)


def _dxgi_adapters() -> list[dict[str, Any]]:
    """DXGI's adapter list through COM vtables (ctypes only, so no extra dependency).

    Vtable slots: IUnknown 0-2, IDXGIObject 3-6, IDXGIFactory 7-11, IDXGIFactory1
    EnumAdapters1 = 12; IDXGIAdapter GetDesc = 8, IDXGIAdapter1 GetDesc1 = 10.
    """
    if sys.platform != "win32":  # called only there; this also tells mypy the rest is Windows code
        return []
    import ctypes
    import uuid

    class Guid(ctypes.Structure):
        _fields_ = [("data", ctypes.c_ubyte * 16)]

    def guid(text: str) -> Guid:
        return Guid.from_buffer_copy(uuid.UUID(text).bytes_le)

    class AdapterDesc1(ctypes.Structure):
        _fields_ = [
            ("Description", ctypes.c_wchar * 128), ("VendorId", ctypes.c_uint), ("DeviceId", ctypes.c_uint),
            ("SubSysId", ctypes.c_uint), ("Revision", ctypes.c_uint), ("DedicatedVideoMemory", ctypes.c_size_t),
            ("DedicatedSystemMemory", ctypes.c_size_t), ("SharedSystemMemory", ctypes.c_size_t),
            ("LuidLow", ctypes.c_ulong), ("LuidHigh", ctypes.c_long), ("Flags", ctypes.c_uint),
        ]

    def method(obj: ctypes.c_void_p, index: int, *argtypes: Any) -> Any:
        vtable = ctypes.cast(obj, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))).contents
        return ctypes.WINFUNCTYPE(ctypes.c_long, ctypes.c_void_p, *argtypes)(vtable[index])

    factory = ctypes.c_void_p()
    iid_factory1 = guid("770aae78-f26f-4dba-a829-253c83d1b387")
    if ctypes.windll.dxgi.CreateDXGIFactory1(ctypes.byref(iid_factory1), ctypes.byref(factory)) != 0:
        raise OSError("CreateDXGIFactory1 failed")
    try:
        d3d12_create = ctypes.windll.d3d12.D3D12CreateDevice
    except OSError:
        d3d12_create = None  # Windows without Direct3D 12
    iid_device = guid("189819f1-1db6-4b57-be54-1821339b85f7")
    found: list[dict[str, Any]] = []
    try:
        index = 0
        while True:
            adapter = ctypes.c_void_p()
            enum = method(factory, 12, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p))
            if enum(factory, index, ctypes.byref(adapter)) != 0:
                break  # DXGI_ERROR_NOT_FOUND: no more adapters
            try:
                desc = AdapterDesc1()
                method(adapter, 10, ctypes.POINTER(AdapterDesc1))(adapter, ctypes.byref(desc))
                dx12 = None
                if d3d12_create is not None:
                    # ppDevice NULL: only asks whether feature level 11_0 would work (S_FALSE = yes)
                    dx12 = d3d12_create(adapter, 0xB000, ctypes.byref(iid_device), None) in (0, 1)
                found.append({
                    "name": desc.Description, "vendor_id": desc.VendorId, "flags": desc.Flags,
                    "dedicated": desc.DedicatedVideoMemory, "shared": desc.SharedSystemMemory, "dx12": dx12,
                })
            finally:
                method(adapter, 2)(adapter)
            index += 1
    finally:
        method(factory, 2)(factory)
    return found


def _apple(hw: Hardware) -> None:
    hw.apple_silicon = hw.os == "Darwin" and hw.arch == "arm64"
    if hw.apple_silicon and hw.ram_total_mb:
        # Unified memory: the GPU shares the RAM; onnxruntime-genai has no Metal provider,
        # so the GPU is listed for the record only and the CPU (NEON) runs the model.
        hw.gpus.append(Gpu(name=hw.cpu or "Apple GPU", vendor="Apple", memory_mb=None, api="metal", integrated=True))


def _genai(hw: Hardware) -> None:
    from importlib import metadata
    from importlib.util import find_spec

    for dist in GENAI_BUILDS:
        try:
            hw.genai_package = f"{dist} {metadata.version(dist)}"
            break
        except metadata.PackageNotFoundError:
            continue
    if hw.genai_package is None:
        hw.problems.append("onnxruntime-genai is not installed: no model can run")
        return
    spec = find_spec("onnxruntime_genai")
    if spec is not None and spec.submodule_search_locations:
        libs = " ".join(p.name.lower() for loc in spec.submodule_search_locations for p in Path(loc).iterdir())
        hw.ort_providers = ["CPUExecutionProvider"]
        if "providers_cuda" in libs:
            hw.ort_providers.insert(0, "CUDAExecutionProvider")
        if "directml" in libs:
            hw.ort_providers.insert(0, "DmlExecutionProvider")
    from archivist.engine.runtime import available_providers

    hw.genai_providers = available_providers()


def _onnxruntime(hw: Hardware) -> None:
    try:
        import onnxruntime
    except ImportError:
        return
    hw.ort_providers = list(onnxruntime.get_available_providers())
