"""Selection with reasons: the described machines' choices are pinned, and the rules hold.

The table below is the one in docs/hardware.md; a test keeps the two the same.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import MACHINES, machine

from archivist.engine.hardware import Hardware
from archivist.engine.recommendation import need_bytes, recommend

DOC = Path(__file__).resolve().parents[2] / "docs" / "hardware.md"

# machine file -> (chosen variant, the reason sentence), each with the build its file describes
PINNED = {
    "linux-cpu-16gb": (
        "phi-3.5-mini-instruct-cpu-int4",
        'CPU AVX2, 15.6 GB RAM (14.1 GB usable): Phi-3 medium 128k int4 needs 11.2 GB and runs at about 2.7 tokens/s, Phi-3.5 mini int4 needs 6.2 GB and runs at about 9 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "linux-cpu-32gb": (
        "phi-3.5-mini-instruct-cpu-int4",
        'CPU AVX2, 31.2 GB RAM (29.7 GB usable): Phi-3 medium 128k int4 needs 11.2 GB and runs at about 2.7 tokens/s, Phi-3.5 mini int4 needs 6.2 GB and runs at about 9 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "linux-cpu-4gb": (
        "smollm2-135m-instruct",
        'CPU NEON, 3.7 GB RAM (2.2 GB usable): Phi-3 medium 128k int4 needs 11.2 GB, SmolLM2 135M (built-in) int4 needs 0.7 GB → CPU int4 (SmolLM2 135M (built-in))',
    ),
    "linux-cpu-8gb": (
        "smollm2-135m-instruct",
        'CPU AVX2, 7.6 GB RAM (6.1 GB usable): Phi-3 medium 128k int4 needs 11.2 GB, SmolLM2 135M (built-in) int4 needs 0.7 GB → CPU int4 (SmolLM2 135M (built-in))',
    ),
    "linux-nvidia-a100-80gb": (
        "phi-3-medium-128k-instruct-cuda-fp16",
        'NVIDIA A100-SXM4-80GB 80 GB (72.0 GB usable): Phi-3 medium 128k fp16 needs 28.6 GB → CUDA fp16 (Phi-3 medium 128k)',
    ),
    "linux-nvidia-h100-80gb-probed": (
        "phi-3-medium-128k-instruct-cuda-fp16",
        'NVIDIA H100 80GB HBM3 80 GB (71.7 GB usable): Phi-3 medium 128k fp16 needs 28.6 GB → CUDA fp16 (Phi-3 medium 128k)',
    ),
    "linux-nvidia-rtx3060-12gb-cpu-build": (
        "phi-3.5-mini-instruct-cpu-int4",
        'the installed build cannot use NVIDIA GeForce RTX 3060 12 GB; CPU AVX2, 32.0 GB RAM (30.5 GB usable): Phi-3 medium 128k int4 needs 11.2 GB and runs at about 2.7 tokens/s, Phi-3.5 mini int4 needs 6.2 GB and runs at about 9 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "linux-nvidia-rtx3060-12gb": (
        "phi-3-medium-128k-instruct-cuda-int4",
        'NVIDIA GeForce RTX 3060 12 GB (10.8 GB usable): Phi-3 medium 128k fp16 needs 28.6 GB, int4 needs 9.2 GB → CUDA int4 (Phi-3 medium 128k)',
    ),
    "linux-nvidia-t4-16gb": (
        "phi-3-medium-128k-instruct-cuda-int4",
        'Tesla T4 15 GB (13.5 GB usable): Phi-3 medium 128k fp16 needs 28.6 GB, int4 needs 9.2 GB → CUDA int4 (Phi-3 medium 128k)',
    ),
    "mac-m1-8gb": (
        "phi-3.5-mini-instruct-cpu-int4",
        'CPU NEON, 8.0 GB RAM (6.5 GB usable): Phi-3 medium 128k int4 needs 11.2 GB, Phi-3.5 mini int4 needs 6.2 GB and runs at about 8.6 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "mac-m2-16gb": (
        "phi-3.5-mini-instruct-cpu-int4",
        'CPU NEON, 16.0 GB RAM (14.5 GB usable): Phi-3 medium 128k int4 needs 11.2 GB and runs at about 3.9 tokens/s, Phi-3.5 mini int4 needs 6.2 GB and runs at about 12.9 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "win-amd-rx6600-8gb": (
        "phi-3.5-mini-instruct-dml-int4",
        'AMD Radeon RX 6600 8 GB (7.2 GB usable): Phi-3 medium 128k int4 needs 8.7 GB, Phi-3.5 mini int4 needs 4.2 GB → DirectML int4 (Phi-3.5 mini)',
    ),
    "win-amd-rx7900xtx-24gb": (
        "phi-3-medium-128k-instruct-dml-int4",
        'AMD Radeon RX 7900 XTX 24 GB (21.6 GB usable): Phi-3 medium 128k int4 needs 8.7 GB → DirectML int4 (Phi-3 medium 128k)',
    ),
    "win-intel-arc-a770-16gb": (
        "phi-3-medium-128k-instruct-dml-int4",
        'Intel(R) Arc(TM) A770 Graphics 16 GB (14.3 GB usable): Phi-3 medium 128k int4 needs 8.7 GB → DirectML int4 (Phi-3 medium 128k)',
    ),
    "win-intel-iris-xe-16gb": (
        "phi-3.5-mini-instruct-cpu-int4",
        'nothing fits Intel(R) Iris(R) Xe Graphics (integrated, 7.9 GB shared) (3.9 GB usable); CPU AVX-512, 16.0 GB RAM (14.5 GB usable): Phi-3 medium 128k int4 needs 11.2 GB and runs at about 2.6 tokens/s, Phi-3.5 mini int4 needs 6.2 GB and runs at about 8.6 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "win-intel-uhd-8gb-cpu-build": (
        "phi-3.5-mini-instruct-cpu-int4",
        'nothing fits Intel(R) UHD Graphics 620 (integrated, 3.9 GB shared) (2.0 GB usable); CPU AVX2, 8.0 GB RAM (6.5 GB usable): Phi-3 medium 128k int4 needs 11.2 GB, Phi-3.5 mini int4 needs 6.2 GB and runs at about 8.6 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "win-nvidia-gtx1650-4gb": (
        "phi-3.5-mini-instruct-cpu-int4",
        'nothing fits NVIDIA GeForce GTX 1650 4 GB (3.6 GB usable); CPU AVX2, 16.0 GB RAM (14.5 GB usable): Phi-3 medium 128k int4 needs 11.2 GB and runs at about 2.6 tokens/s, Phi-3.5 mini int4 needs 6.2 GB and runs at about 8.6 tokens/s → CPU int4 (Phi-3.5 mini)',
    ),
    "win-nvidia-rtx4070-12gb-cuda": (
        "phi-3-medium-128k-instruct-cuda-int4",
        'NVIDIA GeForce RTX 4070 12 GB (10.8 GB usable): Phi-3 medium 128k fp16 needs 28.6 GB, int4 needs 9.2 GB → CUDA int4 (Phi-3 medium 128k)',
    ),
    "win-nvidia-rtx4070-12gb": (
        "phi-3-medium-128k-instruct-dml-int4",
        'NVIDIA GeForce RTX 4070 12 GB (10.8 GB usable): Phi-3 medium 128k int4 needs 8.7 GB → DirectML int4 (Phi-3 medium 128k)',
    ),
    "win-nvidia-rtx4090-24gb-cuda": (
        "phi-3-medium-128k-instruct-cuda-int4",
        'NVIDIA GeForce RTX 4090 24 GB (21.6 GB usable): Phi-3 medium 128k fp16 needs 28.6 GB, int4 needs 9.2 GB → CUDA int4 (Phi-3 medium 128k)',
    ),
}


def test_at_least_twelve_machines_cover_the_required_kinds() -> None:
    names = sorted(p.stem for p in MACHINES.glob("*.json"))
    assert len(names) >= 12 and set(names) == set(PINNED)
    assert {machine(n).os for n in names} == {"Windows", "Linux", "Darwin"}
    windows_vendors = {g.vendor for n in names if machine(n).os == "Windows" for g in machine(n).gpus}
    assert {"NVIDIA", "AMD", "Intel"} <= windows_vendors
    assert {"linux-cpu-8gb", "linux-cpu-16gb", "linux-cpu-32gb", "mac-m1-8gb", "mac-m2-16gb"} <= set(names)
    assert any(g.vendor == "NVIDIA" for n in names if machine(n).os == "Linux" for g in machine(n).gpus)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_described_machine_choice_and_reason_are_pinned(name: str, catalog) -> None:
    rec = recommend(machine(name), catalog)
    variant, reason = PINNED[name]
    assert rec.choice is not None and rec.choice.variant_id == variant
    assert rec.summary == reason
    assert rec.choice.fits and rec.choice.runnable
    assert all(alt.reason for alt in rec.alternatives)


def test_the_docs_table_lists_the_same_choices() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, (variant, _) in PINNED.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"docs/hardware.md has no row for {name}"
        assert f"`{variant}`" in row, f"docs/hardware.md disagrees on {name}"


def test_the_issue_example_reads_as_promised(catalog) -> None:
    rec = recommend(machine("win-nvidia-rtx4070-12gb-cuda"), catalog)
    assert re.fullmatch(
        r"NVIDIA GeForce RTX 4070 12 GB \(10.8 GB usable\): Phi-3 medium 128k fp16 needs 28.6 GB, "
        r"int4 needs 9.2 GB → CUDA int4 \(Phi-3 medium 128k\)",
        rec.summary,
    )


def test_a_gpu_the_build_cannot_use_gets_exact_install_advice(catalog) -> None:
    rec = recommend(machine("linux-nvidia-rtx3060-12gb-cpu-build"), catalog)
    assert rec.choice.provider == "cpu"
    [advice] = rec.advice
    assert advice.startswith("NVIDIA GPU found but the CPU build of onnxruntime-genai is installed")
    assert "pip install onnxruntime-genai-cuda" in advice
    gpu = [c for c in rec.alternatives if c.provider == "cuda" and c.fits]
    assert gpu and not any(c.runnable for c in gpu)


def test_no_build_at_all_recommends_the_ideal_and_what_to_install(catalog) -> None:
    rec = recommend(machine("win-amd-rx7900xtx-24gb"), catalog, installed_build="")
    assert rec.choice.variant_id == "phi-3-medium-128k-instruct-dml-int4"
    assert rec.advice and "onnxruntime-genai-directml" in rec.advice[0]


def test_every_choice_can_be_overridden(catalog) -> None:
    hw = machine("linux-nvidia-rtx3060-12gb")
    assert recommend(hw, catalog, provider="cpu").choice.variant_id == "phi-3.5-mini-instruct-cpu-int4"
    assert recommend(hw, catalog, model="phi-3-mini-4k-instruct").choice.variant_id == "phi-3-mini-4k-instruct-cuda-fp16"
    forced = recommend(hw, catalog, model="phi-3-medium-128k-instruct-cuda-fp16")
    assert forced.choice.variant_id == "phi-3-medium-128k-instruct-cuda-fp16" and not forced.choice.fits
    assert "because you asked for it" in forced.summary


def test_a_longer_context_needs_more_memory_and_rules_out_short_models(catalog) -> None:
    rec = recommend(machine("linux-nvidia-rtx3060-12gb"), catalog, context_tokens=32768)
    short = [c for c in rec.alternatives if c.model_id == "phi-3-medium-4k-instruct"]
    assert short and all(not c.fits and "only 4096 tokens" in c.reason for c in short)
    assert rec.choice.provider == "cpu"  # nothing fits 12 GB with a 32k KV cache
    assert any("--context 2048" in a for a in rec.advice)


def test_memory_need_is_weights_plus_kv_cache_plus_margin(catalog) -> None:
    medium = catalog.model("phi-3-medium-128k-instruct")
    cuda_int4 = catalog.variant("phi-3-medium-128k-instruct-cuda-int4")
    # 2 (K, V) x 40 layers x 10 KV heads x 128 x 2 bytes = 200 KiB per token
    assert medium.kv_cache_bytes(cuda_int4, 1) == 204_800
    need_4k = need_bytes(medium, cuda_int4, 4096)
    assert need_bytes(medium, cuda_int4, 8192) - need_4k == 204_800 * 4096
    assert cuda_int4.weights_bytes < need_4k < cuda_int4.weights_bytes + 2 * 2**30


def test_a_tiny_machine_falls_back_to_the_built_in_default(catalog) -> None:
    hw = Hardware(os="Linux", arch="x86_64", ram_total_mb=3072, genai_package="onnxruntime-genai 0.8.3")
    assert recommend(hw, catalog).choice.variant_id == "smollm2-135m-instruct"
    hw.ram_total_mb = 1024
    rec = recommend(hw, catalog)
    assert rec.choice is None and rec.summary.startswith("nothing in the catalog fits")


def test_asking_for_a_provider_the_build_lacks_says_what_to_install(catalog) -> None:
    rec = recommend(machine("win-nvidia-rtx4070-12gb"), catalog, provider="cuda")  # DirectML build
    assert rec.choice is None and "another onnxruntime-genai build" in rec.summary
    assert "pip uninstall -y onnxruntime-genai-directml && pip install onnxruntime-genai-cuda" in rec.advice[0]


def test_a_cpu_too_slow_for_the_best_model_gets_a_smaller_one_that_reads_along(catalog) -> None:
    hw = Hardware(os="Linux", arch="x86_64", cores=16, ram_total_mb=65536, genai_package="onnxruntime-genai 0.8.3")
    rec = recommend(hw, catalog)
    medium = next(c for c in rec.alternatives if c.variant_id == "phi-3-medium-128k-instruct-cpu-int4")
    assert medium.fits and medium.too_slow and "slower than reading" in medium.reason
    assert rec.choice.variant_id == "phi-3.5-mini-instruct-cpu-int4" and not rec.choice.too_slow
    assert "about" in rec.summary and "tokens/s" in rec.summary


def test_a_cpu_too_slow_for_every_model_still_gets_the_fastest_phi3_not_the_built_in(catalog) -> None:
    hw = Hardware(os="Linux", arch="x86_64", cores=2, ram_total_mb=24576, genai_package="onnxruntime-genai 0.8.3")
    rec = recommend(hw, catalog)
    assert rec.choice.too_slow and not rec.choice.built_in
    fitting = [c for c in rec.alternatives if c.fits and not c.built_in]
    assert rec.choice.tokens_per_s == max(c.tokens_per_s for c in fitting)


def test_a_gpu_choice_carries_no_cpu_speed_estimate(catalog) -> None:
    rec = recommend(machine("linux-nvidia-rtx3060-12gb"), catalog)
    assert rec.choice.tokens_per_s is None and not rec.choice.too_slow
