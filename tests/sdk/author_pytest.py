"""Run pytest the way a plugin author does: a fresh process, Archivist's fixtures active.

The fixtures reach an author's tests through the ``pytest11`` entry point. Where that
is not (yet) installed, ``-p archivist.testing`` loads the same module by name; both at
once would register it twice, so the flag is added only when the entry point is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Shared with tests/conftest.py, so the default model is built once for both.
TEST_CACHE = ROOT / ".cache"


def entry_point_installed() -> bool:
    return any(ep.value == "archivist.testing" for ep in metadata.entry_points(group="pytest11"))


def plugin_args() -> list[str]:
    return [] if entry_point_installed() else ["-p", "archivist.testing"]


def run_pytest(
    folder: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run pytest on ``folder``; return the process and each test's outcome by name."""
    report = folder / "report.xml"
    extra = dict(env or {})
    if "PYTHONPATH" in extra and os.environ.get("PYTHONPATH"):
        extra["PYTHONPATH"] += os.pathsep + os.environ["PYTHONPATH"]
    env = {
        **os.environ,
        "ARCHIVIST_TEST_CACHE": os.environ.get("ARCHIVIST_TEST_CACHE", str(TEST_CACHE)),
        **extra,
    }
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("ARCHIVIST_HOME", None)
    command = [sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider",
               f"--junitxml={report}", "-q", *plugin_args(), *args]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, timeout=timeout)
    outcomes: dict[str, str] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            kinds = {child.tag for child in case}
            outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
            outcomes[case.get("name", "")] = outcome
    return result, outcomes
