"""The hardware probe: fast, never fatal, and a plain object any machine can be described as."""

from __future__ import annotations

import json
import time

from conftest import MACHINES

from archivist.engine import hardware
from archivist.engine.hardware import Gpu, Hardware, probe


def test_probe_describes_this_machine_quickly() -> None:
    probe()  # the first call pays for importing onnxruntime-genai
    started = time.perf_counter()
    hw = probe()
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert hw.os and hw.arch and hw.cores >= 1
    assert hw.ram_total_mb and hw.ram_total_mb > 0
    assert hw.genai_package and hw.genai_build in ("cpu", "cuda", "directml")
    assert "cpu" in hw.genai_providers and "CPUExecutionProvider" in hw.ort_providers
    assert elapsed_ms < 300 and hw.probe_ms < 300


def test_a_failing_probe_is_reported_not_fatal(monkeypatch) -> None:
    def broken(hw: Hardware) -> None:
        raise RuntimeError("sysfs unreadable")

    monkeypatch.setattr(hardware, "_memory", broken)  # a fault, injected
    hw = probe()
    assert any(p.startswith("memory probe failed") and "sysfs unreadable" in p for p in hw.problems)
    assert hw.ram_total_mb is None and hw.genai_package  # the other probes still ran


def test_full_probe_asks_onnxruntime_for_its_providers() -> None:
    hw = probe(full=True)
    assert "CPUExecutionProvider" in hw.ort_providers


def test_a_probed_machine_round_trips_through_json() -> None:
    hw = probe()
    again = Hardware.from_dict(json.loads(json.dumps(hw.to_dict())))
    assert again == hw


def test_described_machines_load_and_unknown_keys_are_ignored() -> None:
    for path in MACHINES.glob("*.json"):
        hw = Hardware.from_dict(json.loads(path.read_text()))
        assert hw.os in ("Windows", "Linux", "Darwin") and hw.description
    hw = Hardware.from_dict({"os": "Linux", "arch": "x86_64", "from_a_newer_version": 1,
                             "gpus": [{"name": "X", "vendor": "AMD", "extra": True}]})
    assert hw.gpus == [Gpu(name="X", vendor="AMD")]


def test_the_build_is_read_from_the_package_name() -> None:
    assert Hardware(os="Linux", arch="x86_64", genai_package="onnxruntime-genai-cuda 0.8.3").genai_build == "cuda"
    assert Hardware(os="Windows", arch="amd64", genai_package="onnxruntime-genai-directml 0.8").genai_build == "directml"
    assert Hardware(os="Linux", arch="x86_64", genai_package="onnxruntime-genai 0.18.0").genai_build == "cpu"
    assert Hardware(os="Linux", arch="x86_64").genai_build is None
