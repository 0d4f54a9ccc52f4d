"""``archivist serve`` as a user runs it: it says where it listens, serves, and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import openai


def test_archivist_serve_listens_on_loopback_shows_a_key_once_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "archivist.cli", "--home", str(home), "serve", "--port", "0", "--require-key"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Archivist API on http://127.0.0.1:") and "/v1" in first, first
        url = first.split()[3]
        assert process.stdout.readline().startswith("API key (shown once")
        key = process.stdout.readline().strip()
        assert key.startswith("sk-archivist-")
        models = [m.id for m in openai.OpenAI(base_url=url, api_key=key, max_retries=0).models.list()]
        assert models[:2] == ["archivist", "archivist:nodocs"]
        try:
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
            raise AssertionError("a wrong key was let in")
        except openai.AuthenticationError:
            pass
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out
    # A port another program holds is told plainly.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        again = subprocess.run([sys.executable, "-m", "archivist.cli", "--home", str(home), "serve", "--port",
                                str(port)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in again.stderr
