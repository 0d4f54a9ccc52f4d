"""Load with fallback: a failed load walks on to the next installed variant, and says why.

The failures here are real ones from onnxruntime-genai (a CUDA variant on the CPU build,
a folder whose files are not a model); out of memory is injected, since no test should
have to exhaust the machine. The successful fallback uses the real built-in model when
its recipe is available.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from archivist.engine.fallback import fallback_chain, fallback_plan, load_with_fallback
from archivist.engine.installed import installed_models
from archivist.engine.runtime import available_providers, load_model
from archivist.errors import ModelLoadError
from archivist.types import ModelInfo


def make_folder(models: Path, model_id: str, provider: str | None, source: Path | None = None) -> Path:
    folder = models / model_id
    if source is not None:
        shutil.copytree(source, folder)
    else:
        folder.mkdir(parents=True)
        (folder / "genai_config.json").write_text(json.dumps({"model": {"context_length": 4096}}))
    if provider is not None:
        (folder / "archivist.json").write_text(json.dumps({"id": model_id, "provider": provider}))
    return folder


def real_load(info: ModelInfo, provider: str):
    return load_model(Path(info.path), provider)


def test_the_chain_tries_the_choice_then_installed_variants_best_first(tmp_path: Path, catalog) -> None:
    models = tmp_path / "models"
    make_folder(models, "phi-3-mini-4k-instruct-cpu-int4", "cpu")
    make_folder(models, "phi-3-medium-128k-instruct-cuda-int4", "cuda")
    make_folder(models, "phi-3-medium-128k-instruct-cpu-int4", "cpu")
    make_folder(models, "my-imported-model", None)
    installed = installed_models(models)
    first = next(m for m in installed if m.id == "phi-3-medium-128k-instruct-cuda-int4")

    chain = fallback_chain(first, None, installed, ["cuda", "cpu"], catalog)
    assert [(i.id, p) for i, p in chain] == [
        ("phi-3-medium-128k-instruct-cuda-int4", "cuda"),
        ("phi-3-medium-128k-instruct-cpu-int4", "cpu"),
        ("phi-3-mini-4k-instruct-cpu-int4", "cpu"),
        ("my-imported-model", "cpu"),
    ]
    cpu_only = fallback_chain(first, None, installed, ["cpu"], catalog)
    assert ("phi-3-medium-128k-instruct-cuda-int4", "cuda") == (cpu_only[0][0].id, cpu_only[0][1])
    assert all(p == "cpu" for _, p in cpu_only[1:])


def test_every_real_failure_is_reported_with_its_reason(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_folder(models, "phi-3-mini-4k-instruct-cuda-int4", "cuda")
    make_folder(models, "phi-3-mini-4k-instruct-cpu-int4", "cpu")
    installed = installed_models(models)
    first = next(m for m in installed if m.id.endswith("cuda-int4"))
    chain = fallback_chain(first, None, installed, available_providers())

    with pytest.raises(ModelLoadError) as failure:
        load_with_fallback(chain, real_load)
    message = str(failure.value)
    assert "phi-3-mini-4k-instruct-cuda-int4 on cuda" in message
    assert "phi-3-mini-4k-instruct-cpu-int4 on cpu" in message


def test_out_of_memory_moves_on_and_the_user_is_told(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_folder(models, "phi-3-medium-128k-instruct-cpu-int4", "cpu")
    make_folder(models, "phi-3-mini-4k-instruct-cpu-int4", "cpu")
    installed = installed_models(models)
    first = next(m for m in installed if m.id.startswith("phi-3-medium"))
    chain = fallback_chain(first, "cpu", installed, ["cpu"])
    attempts: list[str] = []

    def load(info: ModelInfo, provider: str):
        attempts.append(info.id)
        if info.id.startswith("phi-3-medium"):
            raise MemoryError("std::bad_alloc")  # the injected fault
        return f"loaded {info.id}"  # the second folder is a stub: its real load is tested elsewhere

    outcome = load_with_fallback(chain, load)
    assert outcome.model == "loaded phi-3-mini-4k-instruct-cpu-int4"
    assert outcome.fell_back and attempts == [first.id, "phi-3-mini-4k-instruct-cpu-int4"]
    assert "out of memory" in outcome.message
    assert outcome.message.endswith("using phi-3-mini-4k-instruct-cpu-int4 on cpu instead")


def test_fallback_plan_reads_this_machine(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_folder(models, "phi-3-mini-4k-instruct-cuda-int4", "cuda")
    make_folder(models, "phi-3-mini-4k-instruct-cpu-int4", "cpu")
    installed = installed_models(models)
    first = next(m for m in installed if m.id.endswith("cuda-int4"))
    plan = fallback_plan(first, None, models)
    assert plan[0][1] == "cuda"  # what was built for is tried first, even on a CPU build
    assert [(i.id, p) for i, p in plan[1:]] == [("phi-3-mini-4k-instruct-cpu-int4", "cpu")]


@pytest.mark.skipif(importlib.util.find_spec("archivist_models.default") is None,
                    reason="the built-in model recipe (archivist_models.default) is not in this tree yet")
def test_a_cuda_variant_on_a_cpu_build_falls_back_to_the_real_default_model(tmp_path: Path, default_model_dir) -> None:
    if "cuda" in available_providers():
        pytest.skip("this machine's build really has CUDA")
    models = tmp_path / "models"
    make_folder(models, "phi-3-mini-4k-instruct-cuda-int4", "cuda", source=default_model_dir)
    make_folder(models, default_model_dir.name, None, source=default_model_dir)
    installed = installed_models(models)
    first = next(m for m in installed if m.id == "phi-3-mini-4k-instruct-cuda-int4")

    outcome = load_with_fallback(fallback_plan(first, None, models), real_load)
    try:
        assert outcome.provider == "cpu" and outcome.info.path != first.path
        assert "phi-3-mini-4k-instruct-cuda-int4 on cuda failed" in outcome.message
        assert outcome.model.count_tokens("hello") > 0
    finally:
        outcome.model.close()
