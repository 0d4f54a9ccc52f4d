"""``convert()``: one GGUF file in, one onnxruntime-genai model folder out, atomically.

The folder is assembled in a hidden temporary sibling, every file is fsynced, and only then
is it renamed to ``out_dir``. An interrupted or failed conversion therefore never leaves
anything that looks like a model (the runtime treats any folder with ``genai_config.json``
as loadable).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import onnx

from archivist.errors import ConversionError

from .external_data import ExternalDataWriter
from .genai_config import genai_config
from .graph import GraphOptions, build_decoder, check_tensor_types
from .source import GGUFSource
from .spec import read_spec
from .tokenizer import write_tokenizer_files

CONVERTER_VERSION = 2
"""Bump on any change to the graph or files written: caches and installed models keyed on
it are rebuilt (``archivist.json`` records the version a folder was made with)."""

MANIFEST = "archivist.json"

Progress = Callable[[str, float], None]


def convert(
    gguf_path: Path,
    out_dir: Path,
    *,
    expected_sha256: str | None = None,
    progress: Progress | None = None,
    model_id: str | None = None,
    name: str | None = None,
    options: GraphOptions = GraphOptions(),
) -> Path:
    """Convert a llama, mistral, qwen2 or phi3 GGUF into an onnxruntime-genai folder at ``out_dir``.

    Writes ``model.onnx`` + ``model.onnx.data``, ``genai_config.json``, ``tokenizer.json``,
    ``tokenizer_config.json`` (with the chat template) and ``archivist.json`` (id, name,
    source file and sha256, converter version, context length). An existing ``out_dir`` is
    replaced only once the new folder is complete. ``progress(stage, fraction)`` is called
    as work advances. Raises ``ConversionError`` (one sentence) for a missing, truncated or
    corrupt file, a checksum mismatch, or an unsupported architecture or tensor type.
    """
    report = progress or (lambda stage, fraction: None)
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    started = time.monotonic()
    report("checking source", 0.0)
    source = GGUFSource(gguf_path, expected_sha256)
    spec = read_spec(source)
    check_tensor_types(source)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        weights = ExternalDataWriter(staging / "model.onnx.data")
        try:
            model = build_decoder(source, spec, weights, options,
                                  progress=lambda stage, f: report(stage, 0.02 + 0.85 * f))
        finally:
            weights.close()
        report("writing graph", 0.88)
        onnx.save_model(model, str(staging / "model.onnx"))
        report("writing tokenizer", 0.92)
        special = write_tokenizer_files(source, staging, spec.context_length)
        _write_json(staging / "genai_config.json", genai_config(spec, special))
        _write_json(staging / MANIFEST, {
            "id": model_id or _slug(out_dir.name),
            "name": name or spec.name,
            "architecture": spec.architecture,
            "source": {"file": gguf_path.name, "sha256": source.sha256},
            "converter_version": CONVERTER_VERSION,
            "graph_options": dataclasses.asdict(options),
            "context_length": spec.context_length,
            "eos_token_ids": special.eos_ids,
            "conversion_seconds": round(time.monotonic() - started, 1),
        })
        report("syncing", 0.97)
        _fsync_tree(staging)
        _replace(staging, out_dir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConversionError(f"Could not write the model folder {out_dir}: {exc}") from exc
        raise
    report("done", 1.0)
    return out_dir


def read_manifest(model_dir: Path) -> dict | None:
    """The ``archivist.json`` of a converted folder, or ``None`` if absent or unreadable."""
    try:
        return json.loads((Path(model_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "model"


def _remove_leftovers(out_dir: Path) -> None:
    """Delete hidden staging folders a killed conversion of ``out_dir`` left behind."""
    for pattern in (f".{out_dir.name}.partial-*", f".{out_dir.name}.old-*"):
        for stale in out_dir.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``, moving an older folder out of the way first."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    _fsync_dir(out_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
