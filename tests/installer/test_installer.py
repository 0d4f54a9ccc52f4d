"""Fast checks of the packaging (no PyInstaller run): what goes in, the build plan, the
Linux package layout, and the per-platform files. The full build and smoke test are
``python installer/build.py`` and ``installer/smoke.sh``."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import plistlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_saved_path = list(sys.path)
sys.path.insert(0, str(INSTALLER))  # the scripts import their sibling `bundle`
bundle = load("bundle", INSTALLER / "bundle.py")
build = load("archivist_installer_build", INSTALLER / "build.py")
package = load("archivist_installer_linux_package", INSTALLER / "linux" / "package.py")
launcher = load("archivist_installer_launcher", INSTALLER / "launcher.py")
share_weights = load("archivist_installer_share_weights", INSTALLER / "share_weights.py")
sys.path[:] = _saved_path  # installer/ holds a build.py: keep it off the path for other tests

# Import names of pyproject's base dependencies (always installed with the app).
CORE_IMPORTS = {"click", "pluggy", "sqlalchemy", "alembic", "platformdirs", "pynvml", "numpy",
                "tokenizers", "onnx", "gguf"}
# Build- and training-time code that never runs in the packaged app.
BUILD_ONLY = ("build_model.py", "build_classifier.py", "training")


def excluded(module: str) -> bool:
    return any(module == e or module.startswith(e + ".") for e in bundle.EXCLUDES)


def lazy_imports(folder: Path) -> dict[str, str]:
    """Top-level names imported inside functions, with a file that does it."""
    found: dict[str, str] = {}
    for path in folder.rglob("*.py"):
        if any(part in BUILD_ONLY for part in path.relative_to(folder).parts):
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


# ------------------------------------------------------------------ what goes in


def test_dev_and_bench_tooling_is_excluded() -> None:
    for name in ("pytest", "_pytest", "pytest_timeout", "pytestqt", "archivist.testing",
                 "archivist_notebooks", "bench", "sklearn", "scipy", "joblib", "setuptools", "pip",
                 "archivist_safety.training", "alembic.testing", "sqlalchemy.testing"):
        assert excluded(name), f"{name} would be bundled"
    for module in [*bundle.LAZY_IMPORTS, *bundle.COLLECT_SUBMODULES]:
        assert not excluded(module), f"{module} is both wanted and excluded"


def test_every_lazy_import_of_the_app_and_plugins_is_bundled() -> None:
    stdlib = set(sys.stdlib_module_names)
    ours = {"archivist", "archivist_faiss", "archivist_safety", "archivist_models"}
    for folder in (ROOT / "app" / "archivist", ROOT / "plugins" / "archivist_faiss",
                   ROOT / "plugins" / "archivist_safety", ROOT / "models"):
        for name, where in lazy_imports(folder).items():
            if name in stdlib or name in ours or name in CORE_IMPORTS or excluded(name):
                continue
            assert name in bundle.LAZY_IMPORTS, f"{where} imports {name} lazily: add it to installer/bundle.py"


def test_plugins_and_their_data_ship() -> None:
    assert {"archivist_faiss", "archivist_safety", "archivist_models"} <= set(bundle.COLLECT_SUBMODULES)
    data = dict(bundle.COLLECT_DATA)
    assert data["archivist.store"] is True  # Alembic reads env.py and versions/*.py as files
    assert "archivist_safety" in data and "archivist_models" in data
    assert "archivist" in bundle.COPY_METADATA  # entry points find the built-in plugins
    assert set(bundle.RUNTIMES.values()) == {"onnxruntime-genai", "onnxruntime-genai-cuda",
                                             "onnxruntime-genai-directml"}


def dropped(dest: str) -> bool:
    """What the spec's keep() leaves out, for a destination path in the bundle."""
    return any(pattern in dest for pattern in bundle.EXCLUDE_BINARY_PATTERNS)


def test_the_window_keeps_its_desktop_platforms_and_loses_the_embedded_ones() -> None:
    plugins = "PySide6/Qt/plugins"
    for kept in (f"{plugins}/platforms/libqxcb.so", f"{plugins}/platforms/libqwayland.so",
                 f"{plugins}/platforms/libqoffscreen.so", f"{plugins}/platforms/libqminimal.so",
                 f"{plugins}/platformthemes/libqxdgdesktopportal.so",
                 f"{plugins}/imageformats/libqjpeg.so", f"{plugins}/xcbglintegrations/libqxcb-glx-integration.so",
                 "PySide6/Qt/lib/libQt6Widgets.so.6", "PySide6/Qt/lib/libQt6XcbQpa.so.6",
                 "PySide6/Qt/lib/libQt6WaylandClient.so.6", "PySide6/Qt/lib/libQt6DBus.so.6",
                 "PySide6/Qt6Widgets.dll", "PySide6/plugins/platforms/qwindows.dll"):
        assert not dropped(kept), kept
    for gone in ("PySide6/Qt/translations/qtbase_de.qm", "PySide6/translations/qtbase_de.qm",
                 f"{plugins}/platforms/libqeglfs.so", f"{plugins}/platforms/libqlinuxfb.so",
                 f"{plugins}/platforms/libqvkkhrdisplay.so", f"{plugins}/platforms/libqminimalegl.so",
                 f"{plugins}/egldeviceintegrations/libqeglfs-kms-egldevice-integration.so",
                 f"{plugins}/generic/libqevdevmouseplugin.so", "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6",
                 "PySide6/Qt/lib/libQt6EglFsKmsSupport.so.6", "PySide6/Qt/lib/libQt6Quick.so.6"):
        assert dropped(gone), gone


def test_hf_xet_stays_out_because_the_bundle_never_could_use_it() -> None:
    # huggingface_hub only uses hf_xet when its distribution metadata is found; the
    # bundle does not ship it, so downloads go over HTTPS either way.
    assert excluded("hf_xet")
    assert not any(d.replace("_", "-").lower() == "hf-xet" for d in bundle.COPY_METADATA)


def test_linux_strips_every_library_but_the_wheels_vendored_copies() -> None:
    for stripped in ("libpython3.11.so.1.0", "sqlalchemy/engine/_result_cy.cpython-311-x86_64-linux-gnu.so",
                     "python3.11/lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so",
                     "pypdfium2_raw/libpdfium.so", "PySide6/Qt/lib/libicui18n.so.73",
                     "onnxruntime_genai/libonnxruntime-genai.so", "faiss/libfaiss.so"):
        assert bundle.strip_on_linux(stripped), stripped
    for kept in ("numpy.libs/libscipy_openblas64_-32a4b2a6.so", "faiss_cpu.libs/libgfortran-83c28eba.so.5.0.0",
                 "models/embedder-minilm-l6-v2/model.onnx", "base_library.zip", "certifi/cacert.pem"):
        assert not bundle.strip_on_linux(kept), kept


def two_variants(folder: Path) -> None:
    """Like the embedder: a Gather over a table both files hold, then a MatMul whose weight
    differs (fp32 in one file, another matrix standing in for the quantized one)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.standard_normal((1000, 64)).astype(np.float32)  # 256 KB, shared
    small = rng.standard_normal((8,)).astype(np.float32)  # below MIN_BYTES: stays inline
    folder.mkdir(parents=True)
    for name, weight in (("model.onnx", rng.standard_normal((64, 32))), ("model.int8.onnx", rng.standard_normal((64, 32)))):
        graph = helper.make_graph(
            [helper.make_node("Gather", ["table", "ids"], ["rows"]),
             helper.make_node("MatMul", ["rows", "w"], ["out"])],
            "variant", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 32])],
            [numpy_helper.from_array(table, "table"), numpy_helper.from_array(weight.astype(np.float32), "w"),
             numpy_helper.from_array(small, "small")])
        onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(folder / name))
    (folder / "tokenizer.json").write_text("{}", "utf-8")


def run_model(path: Path):
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": np.array([0, 7, 999], dtype=np.int64)})[0]


def test_weights_two_variants_hold_in_common_are_stored_once(tmp_path: Path) -> None:
    import numpy as np

    src, dest = tmp_path / "src" / "embedder", tmp_path / "dest" / "embedder"
    two_variants(src)
    result = share_weights.share_folder(src, dest)
    assert result["shared_tensors"] == 1  # the table; not the differing weights, not the tiny one
    assert result["after"] < result["before"] - 200_000
    assert (dest / share_weights.SHARED_FILE).stat().st_size == 1000 * 64 * 4
    assert (dest / "tokenizer.json").read_text("utf-8") == "{}"
    for name in ("model.onnx", "model.int8.onnx"):
        assert np.array_equal(run_model(src / name), run_model(dest / name)), name  # the same numbers
    # a folder of one model (the LLM with its own .onnx.data) is copied as it is
    (tmp_path / "src" / "llm").mkdir()
    (tmp_path / "src" / "llm" / "model.onnx").write_bytes(b"x")
    report = share_weights.share_models(tmp_path / "src", tmp_path / "out", ["llm", "embedder"])
    assert report["llm"]["shared_tensors"] == 0 and (tmp_path / "out" / "llm" / "model.onnx").read_bytes() == b"x"
    assert report["embedder"]["shared_tensors"] == 1


def test_spec_is_python_and_uses_the_shared_pieces() -> None:
    text = (INSTALLER / "archivist.spec").read_text("utf-8")
    compile(text, "archivist.spec", "exec")
    for needle in ("import bundle", "launcher.py", "rthook_archivist.py", "copy_metadata",
                   "ARCHIVIST_BUNDLE_MODELS", "BUNDLE(", "COLLECT("):
        assert needle in text


def test_runtime_hook_sets_telemetry_off_and_points_at_bundled_models(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    code = (
        "import os, sys; sys._MEIPASS = sys.argv[1]; "
        f"exec(open({str(INSTALLER / 'hooks' / 'rthook_archivist.py')!r}).read()); "
        "print(os.environ['ORT_DISABLE_TELEMETRY'], os.environ['ARCHIVIST_BUNDLED_MODELS'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "ARCHIVIST_BUNDLED_MODELS")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out == ["1", str(tmp_path / "models")]


def test_launcher_finds_the_subcommand_past_global_options() -> None:
    assert launcher._subcommand(["--home", "gui", "ask", "x"]) == "ask"
    assert launcher._subcommand(["--safe-mode", "gui"]) == "gui"
    assert launcher._subcommand(["--version"]) is None


def test_windowed_executable_opens_the_window() -> None:
    assert launcher.arguments("C:/Archivist/archivist-gui.exe", []) == ["gui"]
    assert launcher.arguments("/Applications/Archivist.app/Contents/MacOS/archivist-gui",
                              ["-psn_0_1234", "--safe-mode"]) == ["--safe-mode", "gui"]
    assert launcher.arguments("/opt/archivist/archivist", ["ask", "hi"]) == ["ask", "hi"]
    assert launcher.arguments("/opt/archivist/archivist", []) == []


# ------------------------------------------------------------------ build plan


def names(steps) -> list[str]:
    return [s.name for s in steps]


def test_linux_plan(tmp_path: Path) -> None:
    o = build.Options(runtime="cpu", platform="linux", machine="x86_64", venv=tmp_path / "venv")
    steps = build.plan(o)
    assert names(steps) == ["venv", "dependencies", "ocr-engine", "app", "lazy-imports", "default-model", "embedder",
                            "share-weights", "pyinstaller", "self-check", "deb", "tarball"]
    by = {s.name: s for s in steps}
    argv = by["dependencies"].argv
    requirements = argv[argv.index("--quiet") + 1:]
    assert build.PYINSTALLER in requirements and f"{ROOT}[cpu,ocr]" in requirements
    # The OCR engine without its declared dependencies (plain onnxruntime, GUI OpenCV).
    assert by["ocr-engine"].argv[-2:] == ["--no-deps", bundle.OCR_ENGINE]
    assert not any("dev" in r or "pytest" in r for r in requirements)
    assert "--no-deps" in by["app"].argv and "-e" not in by["app"].argv  # a real install, not editable
    assert "archivist_models.default" in by["default-model"].argv
    assert "archivist_models.embedder" in by["embedder"].argv
    share = by["share-weights"].argv
    assert share[2:4] == [str(o.models_dir), str(o.bundle_models_dir)]
    assert {bundle.DEFAULT_MODEL_DIR, bundle.EMBEDDER_DIR} <= set(share[4:])
    assert by["pyinstaller"].env["ARCHIVIST_BUNDLE_MODELS"] == str(o.bundle_models_dir)
    assert str(INSTALLER / "archivist.spec") in by["pyinstaller"].argv
    assert by["deb"].argv[-1].endswith("_amd64.deb")
    assert any(a.endswith("-linux-x86_64.tar.gz") for a in by["tarball"].argv)
    assert names(build.plan(build.Options(runtime="cpu", platform="linux", package=False)))[-1] == "self-check"
    assert by["deb"].argv[by["deb"].argv.index("--compression") + 1] == "xz"  # smallest download by default
    fast = build.plan(build.Options(runtime="cpu", platform="linux", deb_compression="zstd"))
    assert "zstd" in next(s for s in fast if s.name == "deb").argv


def test_build_report_records_the_load_the_times_were_taken_under() -> None:
    load = build.load_average()
    if hasattr(os, "getloadavg"):
        assert isinstance(load, list) and len(load) == 3 and all(x >= 0 for x in load)
    else:
        assert load is None


def test_windows_plan_defaults_to_directml_and_runs_inno_setup() -> None:
    assert bundle.runtime_for("win32") == "directml"
    assert bundle.runtime_for("darwin") == bundle.runtime_for("linux") == "cpu"
    steps = build.plan(build.Options(runtime="directml", platform="win32", machine="AMD64"))
    assert names(steps)[-1] == "inno-setup"
    argv = steps[-1].argv
    assert argv[0] == "iscc" and "/DRuntime=directml" in argv and argv[-1].endswith("archivist.iss")
    deps = " ".join(next(s for s in steps if s.name == "dependencies").argv)
    assert "[directml,ocr]" in deps
    assert build.Options(runtime="directml", platform="win32").venv_python.name == "python.exe"


def test_macos_plan_makes_a_dmg() -> None:
    o = build.Options(runtime="cpu", platform="darwin", machine="arm64")
    steps = build.plan(o)
    assert names(steps)[-1] == "dmg"
    assert steps[-1].argv[-1].endswith("-macos-arm64.dmg")
    assert o.app_dir.name == "Archivist.app"
    assert o.cli_path.parts[-3:] == ("Contents", "MacOS", "archivist")


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(SystemExit):
        build.plan(build.Options(runtime="rocm", platform="linux"))


# ------------------------------------------------------------------ Linux package


def test_desktop_entry_validates(tmp_path: Path) -> None:
    entry = tmp_path / "archivist.desktop"
    entry.write_text(package.desktop_entry("/opt/archivist/archivist"), "utf-8")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Exec"] == "/opt/archivist/archivist gui"
    assert section["Icon"] == "archivist" and section["Type"] == "Application"
    assert section["Categories"].rstrip(";").split(";")[0] == "Office"
    if shutil.which("desktop-file-validate") is None:
        if os.environ.get("CI") == "true":  # scripts/test.sh installs it under CI
            pytest.fail("desktop-file-validate is missing under CI: scripts/test.sh should have installed it")
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    result = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def fake_app(folder: Path) -> Path:
    app = folder / "archivist"
    (app / "_internal" / "models").mkdir(parents=True)
    exe = app / "archivist"
    exe.write_text("#!/bin/sh\necho archivist 0.1.0\n")
    exe.chmod(0o755)
    (app / "_internal" / "libfake.so").write_bytes(b"\x7fELF" + b"\0" * 16 + b"GLIBC_2.17\0GLIBC_2.34\0")
    return app


def test_deb_layout(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    debian = package.stage_deb(app, root, "0.1.0", "amd64")
    assert os.readlink(root / "usr/bin/archivist") == "/opt/archivist/archivist"
    assert os.access(root / "opt/archivist/archivist", os.X_OK)
    assert (root / "usr/share/applications/archivist.desktop").is_file()
    for icon in ("256x256/apps/archivist.png", "48x48/apps/archivist.png", "scalable/apps/archivist.svg"):
        assert (root / "usr/share/icons/hicolor" / icon).is_file()
    fields = dict(line.split(": ", 1) for line in (debian / "control").read_text().splitlines()
                  if ": " in line and not line.startswith(" "))
    assert fields["Package"] == "archivist" and fields["Version"] == "0.1.0"
    assert fields["Architecture"] == "amd64"
    assert int(fields["Installed-Size"]) > 0
    assert fields["Depends"].startswith("libc6 (>= 2.34)")
    assert "opt/archivist/archivist" in (debian / "md5sums").read_text()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_deb_builds_and_reads_back(tmp_path: Path) -> None:
    out = package.build_deb(fake_app(tmp_path), tmp_path / "out" / "archivist_0.1.0_amd64.deb", "0.1.0", "amd64")
    fields = subprocess.run(["dpkg-deb", "--field", str(out), "Package", "Version"], capture_output=True,
                            text=True, check=True).stdout
    assert "Package: archivist" in fields and "Version: 0.1.0" in fields
    listing = subprocess.run(["dpkg-deb", "--contents", str(out)], capture_output=True, text=True,
                             check=True).stdout
    assert "./opt/archivist/archivist" in listing and "root/root" in listing


def test_tarball_has_the_app_and_the_desktop_installer(tmp_path: Path) -> None:
    import tarfile

    out = package.build_tarball(fake_app(tmp_path), tmp_path / "a.tar.gz", "0.1.0", "x86_64")
    with tarfile.open(out) as tar:
        members = set(tar.getnames())
    top = "archivist-0.1.0-linux-x86_64"
    assert {f"{top}/archivist", f"{top}/install-desktop-entry.sh", f"{top}/share/archivist.desktop.in"} <= members


# ------------------------------------------------------------------ Windows, macOS, release


def test_inno_setup_script() -> None:
    text = (INSTALLER / "windows" / "archivist.iss").read_text("utf-8")
    assert "PrivilegesRequired=lowest" in text  # per user, no admin
    assert '{autoprograms}\\Archivist"' in text  # Start menu
    assert 'Tasks: desktopicon' in text and "Flags: unchecked" in text  # optional desktop shortcut
    assert "DelTree(DataDir()" in text and "MB_DEFBUTTON2" in text  # data kept unless asked
    assert "{localappdata}\\Archivist" in text  # platformdirs' user_data_dir on Windows
    assert '#define Runtime "directml"' in text
    assert f"{bundle.GUI_NAME}.exe" in text


def test_info_plist_template() -> None:
    raw = (INSTALLER / "macos" / "Info.plist").read_bytes().replace(b"@VERSION@", b"1.2.3")
    info = plistlib.loads(raw)
    assert info["CFBundleIdentifier"] == bundle.BUNDLE_ID
    assert info["CFBundleShortVersionString"] == "1.2.3"
    assert info["LSArchitecturePriority"][0] == "arm64"
    assert "hdiutil create" in (INSTALLER / "macos" / "make_dmg.sh").read_text()


def test_icons() -> None:
    icons = INSTALLER / "icons"
    png = (icons / "archivist.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (256, 256)
    assert (icons / "archivist.ico").read_bytes()[:4] == b"\0\0\1\0"
    assert (icons / "archivist.icns").read_bytes()[:4] == b"icns"
    assert "<svg" in (icons / "archivist.svg").read_text()


def test_release_workflow_builds_on_each_platform() -> None:
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text("utf-8"))
    matrix = flow["jobs"]["build"]["strategy"]["matrix"]["include"]
    systems = {m["os"].split("-")[0] for m in matrix}
    assert systems == {"ubuntu", "windows", "macos"}
    assert {m["runtime"] for m in matrix if m["os"].startswith("windows")} == {"directml", "cuda"}
    steps = " ".join(str(s.get("run", "")) for s in flow["jobs"]["build"]["steps"])
    assert "installer/build.py" in steps and "installer/smoke.sh" in steps
    assert "release" in flow["jobs"]
