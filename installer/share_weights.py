"""Weights that two ONNX files of one model folder hold byte for byte, stored once.

    python installer/share_weights.py SOURCE_MODELS_DIR DEST_MODELS_DIR

Until embedder recipe 5 the sentence embedder shipped an fp32 and an int8 variant, whose
word-embedding table (47 MB), attention weights and biases were the same bytes, 58 MB
twice; since recipe 5 every model folder holds one ``.onnx`` file and is copied as it is,
but a model a user bundles with several variants still gets this. Each tensor that is identical
in two or more ``.onnx`` files of a folder is written once to ``SHARED_FILE`` in that
folder, and every file that holds it refers to it there (ONNX external data: location,
offset, length). The models compute exactly what they did; only their bytes on disk
are shared. The models are used in place from the app (``ARCHIVIST_BUNDLED_MODELS``), and
ONNX Runtime reads external data relative to the model's folder.

Used by ``installer/build.py`` on the models it built, for the bundle only: the folders
are copied, the source is left alone. A folder with fewer than two ``.onnx`` files, or
whose files share nothing, is copied unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

SHARED_FILE = "shared-weights.bin"
MIN_BYTES = 64 * 1024  # smaller tensors stay inline: not worth a reference
ALIGN = 4096  # each shared tensor starts on a page boundary (ONNX Runtime may map it)


def _key(tensor) -> tuple:
    return (tensor.data_type, tuple(tensor.dims), hashlib.sha256(tensor.raw_data).hexdigest())


def _inline(tensor) -> bool:
    from onnx import TensorProto

    return tensor.data_location != TensorProto.EXTERNAL and tensor.HasField("raw_data")


def share_folder(src: Path, dest: Path, min_bytes: int = MIN_BYTES) -> dict[str, int]:
    """Copy ``src`` to ``dest`` with the tensors its .onnx files have in common stored once.

    Returns ``{"before": bytes, "after": bytes, "shared_tensors": n}``."""
    import onnx
    from onnx import TensorProto

    src, dest = Path(src), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    before = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    paths = sorted(src.glob("*.onnx"))
    if len(paths) < 2 or (src / SHARED_FILE).exists():
        return {"before": before, "after": before, "shared_tensors": 0}

    models = {p.name: onnx.load(str(p), load_external_data=False) for p in paths}
    holders: dict[tuple, set[str]] = {}
    for name, model in models.items():
        for tensor in model.graph.initializer:
            if _inline(tensor) and len(tensor.raw_data) >= min_bytes:
                holders.setdefault(_key(tensor), set()).add(name)
    shared = {key for key, names in holders.items() if len(names) > 1}
    if not shared:
        return {"before": before, "after": before, "shared_tensors": 0}

    where: dict[tuple, tuple[int, int]] = {}  # key -> (offset, length)
    with open(dest / SHARED_FILE, "wb") as out:
        for model in models.values():
            for tensor in model.graph.initializer:
                if not _inline(tensor):
                    continue
                key = _key(tensor)
                if key not in shared:
                    continue
                if key not in where:
                    out.seek(-(-out.tell() // ALIGN) * ALIGN)
                    where[key] = (out.tell(), len(tensor.raw_data))
                    out.write(tensor.raw_data)
                offset, length = where[key]
                tensor.ClearField("raw_data")
                tensor.data_location = TensorProto.EXTERNAL
                del tensor.external_data[:]
                for k, v in (("location", SHARED_FILE), ("offset", str(offset)), ("length", str(length))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = k, v
    for name, model in models.items():
        onnx.save_model(model, str(dest / name))
    verify(src, dest)
    after = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return {"before": before, "after": after, "shared_tensors": len(shared)}


def verify(src: Path, dest: Path) -> None:
    """Every model in ``dest`` has the same graph and initializer bytes as in ``src``."""
    import onnx

    for path in sorted(Path(src).glob("*.onnx")):
        a = onnx.load(str(path))
        b = onnx.load(str(Path(dest) / path.name))
        ta = {t.name: t for t in a.graph.initializer}
        tb = {t.name: t for t in b.graph.initializer}
        if ta.keys() != tb.keys() or a.graph.node != b.graph.node:
            raise SystemExit(f"{path.name}: the graph changed while sharing its weights")
        for name, tensor in ta.items():
            if (tensor.data_type, list(tensor.dims), tensor.raw_data) != (tb[name].data_type, list(tb[name].dims), tb[name].raw_data):
                raise SystemExit(f"{path.name}: tensor {name} changed while sharing its weights")
        onnx.checker.check_model(str(Path(dest) / path.name))


def share_models(src: Path, dest: Path, names: list[str] | None = None) -> dict[str, dict[str, int]]:
    """The model folders ``names`` (default: all) of ``src`` into ``dest`` (see :func:`share_folder`)."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    folders = [src / n for n in names] if names else sorted(p for p in src.iterdir() if p.is_dir())
    return {folder.name: share_folder(folder, dest / folder.name) for folder in folders}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("names", nargs="*", help="model folders to copy (default: all)")
    args = parser.parse_args(argv)
    print(json.dumps(share_models(args.src, args.dest, args.names or None), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
