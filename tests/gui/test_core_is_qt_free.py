"""The core never imports Qt: importing every module but ``archivist.gui`` loads no PySide6.

Checked in a fresh interpreter, where ``sys.modules`` shows exactly what the imports
pulled in. ``archivist.gui`` itself is imported too (its package only): it must stay
Qt-free until the window is asked for, so ``archivist --help`` stays fast.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import importlib, json, pkgutil, sys
roots = ["archivist", "archivist_faiss", "archivist_safety", "archivist_models"]
skipped = ("archivist.gui.", "archivist.store.migrations")  # migrations run Alembic on import
imported, failed = [], {}
for root in roots:
    try:
        package = importlib.import_module(root)
    except ImportError as exc:
        failed[root] = repr(exc)
        continue
    imported.append(root)
    for info in pkgutil.walk_packages(package.__path__, root + "."):
        if info.name.startswith(skipped) or info.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6"))
print(json.dumps({"imported": imported, "failed": failed, "qt": qt}))
"""


def test_importing_the_core_does_not_import_qt() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "archivist.gui" in report["imported"]
    assert "archivist.application" in report["imported"]
    assert report["qt"] == [], f"the core imported Qt: {report['qt']}"
    assert not report["failed"], f"core modules failed to import: {report['failed']}"
