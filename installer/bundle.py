"""What goes into the packaged app, in one place: read by the spec, build.py and the tests.

Plain data and small functions, no PyInstaller import, so the fast tests can check the
choices (dev tooling stays out, the plugins' lazy imports are in) without building.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

APP_NAME = "Archivist"
CLI_NAME = "archivist"
GUI_NAME = "archivist-gui"  # the windowed executable on Windows and macOS
BUNDLE_ID = "org.archivist.Archivist"
DESCRIPTION = "A private desktop assistant that answers from your own files, offline"
HOMEPAGE = "https://github.com/archivist-app/archivist"

# onnxruntime-genai build per runtime (the extras of pyproject.toml; they share one module).
RUNTIMES = {
    "cpu": "onnxruntime-genai",
    "cuda": "onnxruntime-genai-cuda",
    "directml": "onnxruntime-genai-directml",
}
DEFAULT_RUNTIME = {"win32": "directml", "darwin": "cpu", "linux": "cpu"}

# Models built at packaging time by the project's own recipes, shipped read-only in
# <app>/models (found through ARCHIVIST_BUNDLED_MODELS, set by the runtime hook).
BUNDLED_MODELS_FOLDER = "models"


def _recipe_name(module: str, name: str) -> str:
    """A string constant of one of the model recipes in ``models/``, read from its source:
    build.py runs on whatever Python starts it, before the build virtualenv (with numpy
    and the app) exists, so the recipe cannot be imported here."""
    path = Path(__file__).resolve().parents[1] / "models" / module
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise LookupError(f"{path} no longer names {name}")


DEFAULT_MODEL_DIR = _recipe_name("default.py", "MODEL_ID")  # archivist_models.default.MODEL_ID
EMBEDDER_DIR = _recipe_name("embedder.py", "EMBEDDER_DIR")  # archivist_models.embedder.EMBEDDER_DIR

# Modules the app and its built-in plugins import lazily (inside functions), with the
# distribution that provides each. PyInstaller's static analysis sees most of them, but a
# lazy import inside a try/except or a plugin loaded through an entry point is easy to
# miss, so they are listed as hidden imports and the build checks each one is installed.
LAZY_IMPORTS: dict[str, str] = {
    "onnxruntime_genai": "onnxruntime-genai",
    "onnxruntime": "onnxruntime",
    "tokenizers": "tokenizers",
    "faiss": "faiss-cpu",
    "pypdfium2": "pypdfium2",
    "charset_normalizer": "charset-normalizer",
    "striprtf": "striprtf",
    "python_calamine": "python-calamine",  # spreadsheets (archivist_faiss.tables)
    "watchdog": "watchdog",
    "huggingface_hub": "huggingface_hub",
    "tqdm": "tqdm",
    "PySide6": "PySide6-Essentials",
    # archivist serve (archivist.api) and the remote model backend (archivist_remote)
    "uvicorn": "uvicorn",
    "fastapi": "fastapi",
    "starlette": "starlette",
    "httpx": "httpx",
    "keyring": "keyring",
    # OCR of scanned pages (archivist_faiss.ocr, .images); the engine is installed without
    # its declared dependencies (OCR_ENGINE below), the rest come with the "ocr" extra.
    "cv2": "opencv-python-headless",
    "PIL": "Pillow",
    "rapidocr_onnxruntime": "rapidocr-onnxruntime",
}

# The OCR engine, installed with --no-deps: it declares plain onnxruntime and the GUI
# build of OpenCV, which would clash with the runtime's onnxruntime and PySide6's Qt
# (pyproject.toml's "ocr" extra says so and holds what it really needs).
OCR_ENGINE = "rapidocr-onnxruntime==1.4.4"

# Packages whose code is imported by name at run time (entry points, Alembic's
# script_location, plugin modules) rather than reached by an import statement.
COLLECT_SUBMODULES = [
    "archivist",
    "archivist_faiss",
    "archivist_safety",
    "archivist_remote",
    "archivist_team",  # its PostgreSQL and Ray libraries come only with the team extra
    "archivist_models",
    "uvicorn",  # loads its protocol, loop and lifespan modules by name
    "keyring.backends",  # found through entry points
    "alembic",  # alembic.command / script / runtime.migration, loaded by the store
    "sqlalchemy.dialects.sqlite",
    "watchdog.observers",  # picks the platform's observer by name
]

# Package data shipped as files: (package, include .py files too). PyInstaller only
# bundles .py as bytecode by default; Alembic reads the migrations from disk (env.py and
# versions/*.py under archivist.store:migrations), so the store ships as real files.
COLLECT_DATA = [
    ("archivist.store", True),
    ("archivist_models", False),  # catalog.toml
    ("archivist_safety", False),  # *.npz
    ("alembic", False),  # script.py.mako templates
    ("rapidocr_onnxruntime", False),  # its ONNX models and config.yaml, read as files
]

# Distributions whose metadata (*.dist-info) must ship: entry points are how the
# built-in plugins are found, and versions are read with importlib.metadata.
COPY_METADATA = [
    "archivist",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "faiss-cpu",
    "numpy",
    "SQLAlchemy",
    "alembic",
    "click",
    "pluggy",
    "tokenizers",
    "huggingface_hub",
    "tqdm",
    "pypdfium2",
    "keyring",  # its backends are entry points
]

# Never in the package: test and dev tooling, benchmarks, training-only libraries, and
# the optional parts of big libraries that nothing in Archivist imports.
EXCLUDES = [
    # tests and dev tooling
    "pytest", "_pytest", "pytest_timeout", "pytestqt",
    "archivist.testing", "archivist_notebooks", "iniconfig", "pygments",
    "IPython", "jupyter", "notebook", "ipykernel", "mypy", "ruff", "black",
    "importlinter", "setuptools", "pip", "wheel", "pkg_resources", "distutils",
    "alembic.testing", "sqlalchemy.testing",
    # benchmarks and training-only libraries (bench/, plugins/archivist_safety/training)
    "bench", "sklearn", "scipy", "joblib", "profanity_check", "threadpoolctl",
    "archivist_safety.training", "archivist_safety.build_model", "archivist_safety.build_classifier",
    "llama_cpp", "torch", "transformers", "sentence_transformers", "pandas", "matplotlib",
    # huggingface_hub uses hf_xet only when importlib.metadata finds its distribution, and
    # the bundle never carried that metadata: the frozen app always downloaded over plain
    # HTTPS (huggingface_hub's own fallback). Its 11 MB library was dead weight.
    "hf_xet",
    # optional parts nothing imports
    "tkinter", "onnxruntime_genai.models", "onnxruntime.training", "onnxruntime.tools",
    "onnxruntime.transformers", "sympy",
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtNetwork",
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtSql", "PySide6.QtTest",
    "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtDesigner", "PySide6.QtUiTools",
    "PySide6.QtHelp", "PySide6.QtXml", "PySide6.QtConcurrent", "PySide6.QtDBus",
    "PySide6.QtPrintSupport", "PySide6.QtSvgWidgets", "PySide6.QtMultimedia",
]

# Shared libraries that PyInstaller would pull in but nothing loads (Qt parts whose
# Python modules are excluded above; QML/Quick come along with the xcb platform plugin).
EXCLUDE_BINARY_PATTERNS = [
    "libQt6Quick", "libQt6Qml", "libQt6Pdf", "libQt6Network", "libQt6VirtualKeyboard",
    "libQt6Designer", "libQt6Sql", "libQt6Test", "libQt6OpenGLWidgets",
    "Qt6Quick", "Qt6Qml", "Qt6Pdf", "Qt6Network", "Qt6VirtualKeyboard",
    "QtQuick", "QtQml", "QtPdf", "QtNetwork", "QtVirtualKeyboard",
    # Qt plugins that need QtNetwork (VNC server platform, TUIO touch over UDP)
    "libqvnc", "libqtuiotouchplugin", "qvnc.dll", "qtuiotouchplugin.dll",
    # Qt's own translations (7 MB): the app installs no QTranslator, its text is English.
    "PySide6/Qt/translations/", "PySide6/translations/",
    # Platforms for embedded devices without a desktop (framebuffer, EGLFS/KMS, Vulkan
    # display) and the evdev input plugins only they load. Desktops use xcb or wayland,
    # the screenshot and the tests use offscreen (all kept).
    "libqeglfs", "libqlinuxfb", "libqminimalegl", "libqvkkhrdisplay",
    "libQt6EglFSDeviceIntegration", "libQt6EglFsKmsSupport", "/egldeviceintegrations/",
    "libqevdev",
]

# Shared libraries are stripped of their symbols on Linux (strip --strip-unneeded,
# 21 MB: SQLAlchemy's and PyYAML's Cython modules, Python's lib-dynload, pdfium, ICU,
# libpython ...), except the copies auditwheel vendored into a wheel's <name>.libs/
# folder: patchelf rewrote those, and numpy.libs/ no longer loads once stripped ("ELF
# load command address/offset not page-aligned"). The executables are never stripped:
# PyInstaller appends the Python archive to them.
NEVER_STRIP_FOLDER_SUFFIX = ".libs"


def strip_on_linux(relative: str) -> bool:
    """Whether the file at ``relative`` (a path under ``_internal``) is stripped on Linux."""
    parts = relative.replace("\\", "/").split("/")
    name = parts[-1]
    if not (name.endswith(".so") or ".so." in name):
        return False
    return not any(part.endswith(NEVER_STRIP_FOLDER_SUFFIX) for part in parts[:-1])


def hidden_imports() -> list[str]:
    """Modules to force into the bundle: the lazy imports (minus excluded parts)."""
    return sorted(LAZY_IMPORTS)


def runtime_for(platform: str | None = None) -> str:
    platform = platform or sys.platform
    key = "linux" if platform.startswith("linux") else platform
    return DEFAULT_RUNTIME.get(key, "cpu")
