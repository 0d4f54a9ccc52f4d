"""The quantized sentence encoders the app shipped until embedder recipe 5, for benches only.

Indexing ran ``mixed`` (FFN1 and attention output in int8 in layers 1-4) and the safety
filter read ``int8`` (every MatMul in int8). Both were dropped because their results
depend on the CPU; see :mod:`archivist_models.embedder` and ``bench/cpu_independence.py``.
``bench/ingest.py``, ``bench/retrieval.py`` and ``bench/cpu_independence.py`` still
compare them with fp32, so they are built here into an encoder folder on demand:

    .venv/bin/python bench/quantized_encoders.py ENCODER_FOLDER

adds ``model.int8.onnx`` and ``model.mixed.onnx`` to the folder and lists them in its
``embedder.json``, so ``Embedder(folder, variant="mixed")`` runs them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archivist_models.embedder import MAX_TOKENS, RECIPE_FILE

VARIANTS = {"int8": "model.int8.onnx", "mixed": "model.mixed.onnx"}


def add_quantized_variants(folder: Path) -> Path:
    """``folder`` (a built encoder) with the int8 and mixed variants added, made once."""
    from tokenizers import Tokenizer

    folder = Path(folder)
    meta = json.loads((folder / RECIPE_FILE).read_text("utf-8"))
    if not (folder / VARIANTS["int8"]).is_file():
        quantize_int8(folder / "model.onnx", folder / VARIANTS["int8"])
    if not (folder / VARIANTS["mixed"]).is_file():
        quantize_mixed(folder / "model.onnx", folder / VARIANTS["mixed"], Tokenizer.from_file(str(folder / "tokenizer.json")))
    meta["variants"] = {**meta.get("variants", {}), **VARIANTS}
    (folder / RECIPE_FILE).write_text(json.dumps(meta, indent=2), "utf-8")
    return folder


def quantize_int8(src: Path, dest: Path) -> None:
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

    Why this and not :func:`quantize_int8`: quantizing every MatMul costs cosine 0.97-0.98, and
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


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(add_quantized_variants(Path(arg)))
