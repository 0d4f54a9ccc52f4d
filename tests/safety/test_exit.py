"""A process that exits while the safety filter's encoder is still loading exits cleanly.

The plugin loads the encoder on a daemon thread when it registers. A short command
(``archivist plugins list``) that ended while that thread was inside onnxruntime was torn
down under it: now and then it ended with SIGABRT (exit code -6) or SIGSEGV instead of 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAFETY_HOME = ROOT / ".cache" / "test-safety-home"  # its encoder is built (tests/safety/test_safety.py)

# Registers the built-in filter through the real plugin host, waits until the encoder's
# load has reached onnxruntime, then a little more, and exits.
EXIT_DURING_LOAD = """
import sys, time
from pathlib import Path
from archivist.context import PluginContext
from archivist.plugins import PluginHost

host = PluginHost(PluginContext(home=Path(sys.argv[1])), allowed={"safety"})
host.safety_filters()
deadline = time.monotonic() + 60
while "onnxruntime" not in sys.modules and time.monotonic() < deadline:
    time.sleep(0.005)
time.sleep(float(sys.argv[2]))
"""


def test_exiting_while_the_encoder_loads_never_aborts() -> None:
    from archivist_safety.filter import ArchivistSafetyFilter

    ArchivistSafetyFilter(home=SAFETY_HOME, wheel_cache=ROOT / ".cache" / "wheels").warm_up()  # built once
    env = {**os.environ, "ARCHIVIST_WHEEL_CACHE": str(ROOT / ".cache" / "wheels")}
    codes = []
    # The load spends about 0.1-0.5 s in onnxruntime after its import starts here; exits
    # spread over that time aborted 5 times in 14 before the fix.
    for delay in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6) * 2:
        done = subprocess.run([sys.executable, "-c", EXIT_DURING_LOAD, str(SAFETY_HOME), str(delay)],
                              capture_output=True, text=True, env=env, timeout=120)
        codes.append((delay, done.returncode))
    assert all(code == 0 for _, code in codes), codes


def test_a_short_command_exits_with_its_own_code(tmp_path: Path) -> None:
    env = {**os.environ, "ARCHIVIST_HOME": str(tmp_path / "home")}
    for _ in range(3):
        done = subprocess.run([sys.executable, "-m", "archivist.cli", "plugins", "list"], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0, (done.returncode, done.stderr)
