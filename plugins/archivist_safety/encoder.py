"""The sentence encoder the learned head reads: all-MiniLM-L6-v2, fp32, its first 4 layers.

The encoder is the one the retrieval plugin uses, built by :mod:`archivist_models.embedder`
under ``<home>/models/`` (in the folder that module names). The head reads its graph cut after the
4th transformer layer (of 6), mean-pooled and unit-length: measured on our own held-out
training lines it separates safe from unsafe better than the final layer, at about two
thirds of the time. The cut is made once and kept under ``<home>/plugins/safety/cache/``
(the embedder's own files are only read): making it parses the whole graph with ``onnx``,
and a session made from bytes holds the GIL, which froze the window for up to 160 ms
while the first answer streamed; a session opened from a file path does not. Layers 5
and 6 are cut out as a second graph (same cache) for the texts the 4-layer head is
unsure of (:func:`tail_model`). The heads are trained on exactly these numbers (the
recipe version and layer count are stored with the head's weights, see
:mod:`archivist_safety.classifier`).

**Why fp32 and not int8.** A verdict must not depend on the processor (ARCHITECTURE.md,
rule 11). The head used to read the int8 encoder, attention in int8 too. Its
integer products are exact on every CPU, but the float parts around them are not. GELU,
softmax, LayerNorm and the float GEMMs use other kernels on AVX2, AVX-512, NEON and
Apple silicon, and differ there by a unit in the last place. Each int8 product first
rounds its input to 8 bits per tensor, so a difference of one unit in the last place can
move a value across a rounding step, and the encoder then amplifies it. Measured with
``bench/cpu_independence.py`` (relative noise of 1e-7, about one float32 ulp, at each
layer boundary, over 334 training lines): the int8 cut's unsafe score moved by up to
3e-2 and the fp32 cut's by 6e-7. The fp32 cut costs more time (docs/safety.md);
``tests/safety/test_cpu_independence.py`` holds the shipped filter to committed scores.

Nothing is downloaded here. The folder is found by
:func:`archivist_models.embedder.ensure_embedder`, which builds it from the pinned wheel
when that wheel is already on disk (``ARCHIVIST_WHEEL_CACHE`` or ``<home>/models/wheels``);
otherwise :class:`EncoderUnavailable` is raised and the filter screens with its rules alone.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Cut files an earlier recipe made (int8, int8 + int8 attention), removed when met.
RETIRED_TAGS = ("", "q", "qa")
MAX_TOKENS = 128  # a screened sentence is short; longer text is read on its first 128 tokens
LAYERS = 4  # transformer layers read (of the encoder's 6)
DEEP_LAYERS = 6  # read too when the 4-layer head is unsure (classifier.py)
# Two threads for one sentence: onnxruntime splits a product's rows and columns between
# threads, never a sum, so the scores are bit for bit those of one thread (checked on 500
# sentences, and by tests/safety/test_cpu_independence.py), for about 1.3x less time on
# a 15-token sentence (2-core AMD EPYC). More threads gain nothing on inputs this small.
THREADS = min(2, os.cpu_count() or 1)


_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with each lone surrogate (from bytes decoded with "surrogateescape", a
    JSON ``"\\udcff"``) replaced by U+FFFD, one character for one, so spans still fit.
    The tokenizer cannot take them ("TextInputSequence must be str")."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


class EncoderUnavailable(RuntimeError):
    """The encoder is not built and cannot be built without a download."""


def encoder_folder(home: Path, cache: Path | None = None) -> Path:
    """The encoder folder of ``home`` (built from a wheel already on disk if missing), or
    :class:`EncoderUnavailable` when it would take a download."""
    from archivist_models.embedder import EMBEDDER_DIR, EmbedderMissing, ensure_embedder, wheel_folder

    models = Path(home) / "models"
    try:
        return ensure_embedder(models, cache)
    except EmbedderMissing as exc:
        raise EncoderUnavailable(
            f"the sentence encoder is not built at {models / EMBEDDER_DIR} and its wheel is not in "
            f"{wheel_folder(models, cache)} (run `archivist models build-default` once)"
        ) from exc


def recipe(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "embedder.json").read_text("utf-8"))


def _layer_ends(graph: Any, model: Path, layers: int) -> list[str]:
    """The hidden-state tensor each transformer layer ends in: the layer norm after its
    feed-forward block (weights "...ln2...")."""
    ends = [n.output[0] for n in graph.graph.node
            if n.op_type in ("SkipLayerNormalization", "LayerNormalization") and len(n.input) > 2 and ".ln2." in n.input[2]]
    if len(ends) < layers:
        raise EncoderUnavailable(f"{model.name}: found {len(ends)} transformer layers, need {layers}; "
                                 "the embedder's graph changed, see docs/safety.md")
    return ends


def _keep_only(graph: Any, output: str, stop_at: str | None = None) -> set[str]:
    """Cut ``graph`` down to what computes ``output`` (its one output), not looking past
    ``stop_at``; returns the names the kept nodes read."""
    from onnx import TensorProto, helper

    needed, kept = {output}, []
    for node in reversed(graph.graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i != stop_at)
    del graph.graph.node[:]
    graph.graph.node.extend(reversed(kept))
    del graph.graph.output[:]
    graph.graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, None))
    weights = [w for w in graph.graph.initializer if w.name in needed]
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(weights)
    return needed


def tail_model(model: Path, start: int = LAYERS, end: int = DEEP_LAYERS) -> bytes:
    """The layers after ``start`` up to ``end`` of the encoder in ``model``, as a graph
    of their own: inputs ``hidden`` (layer ``start``'s output, what the cut of
    :func:`truncated_model` gives) and ``attention_mask``; output layer ``end``'s hidden
    states. Why: only texts the 4-layer head is unsure of go on to the deeper layers,
    and this way they pay for 2 layers, not 6 (see :mod:`archivist_safety.classifier`)."""
    import onnx
    from onnx import TensorProto, helper

    graph = onnx.load(str(model))
    ends = _layer_ends(graph, model, end)
    start_name = ends[start - 1]
    needed = _keep_only(graph, ends[end - 1], stop_at=start_name)
    if "input_ids" in needed:
        raise EncoderUnavailable(f"{model.name}: layers {start + 1}-{end} read the token ids; "
                                 "the embedder's graph changed, see docs/safety.md")
    for node in graph.graph.node:  # the split point becomes the input "hidden"
        node.input[:] = ["hidden" if i == start_name else i for i in node.input]
    inputs = [i for i in graph.graph.input if i.name in needed]
    del graph.graph.input[:]
    graph.graph.input.append(helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", 384]))
    graph.graph.input.extend(inputs)
    del graph.graph.value_info[:]
    return graph.SerializeToString()


def truncated_model(model: Path, layers: int = LAYERS) -> bytes:
    """The encoder graph in ``model`` cut after transformer layer ``layers``: its one output
    is that layer's hidden states ``[batch, tokens, 384]``; nodes past it are dropped."""
    import onnx

    graph = onnx.load(str(model))
    _keep_only(graph, _layer_ends(graph, model, layers)[layers - 1])
    return graph.SerializeToString()


def cut_model_file(model: Path, layers: int, cache: Path) -> Path:
    """:func:`truncated_model`, kept as a file in ``cache``, made once per source file."""
    return _cached(model, f"l{layers}f", lambda: truncated_model(model, layers), cache,
                   retired=tuple(f"l{layers}{t}" for t in RETIRED_TAGS))


def tail_model_file(model: Path, start: int, end: int, cache: Path) -> Path:
    """:func:`tail_model`, kept as a file in ``cache``, made once per source file."""
    return _cached(model, f"l{start}-{end}f", lambda: tail_model(model, start, end), cache,
                   retired=tuple(f"l{start}-{end}{t}" for t in RETIRED_TAGS))


def _cached(model: Path, tag: str, make: Callable[[], bytes], cache: Path, retired: tuple[str, ...] = ()) -> Path:
    """The graph ``make`` gives, kept in ``cache`` under a name tagged ``tag``.

    The name carries the source's size and modification time, so a rebuilt encoder gets
    a fresh cut; older cuts are removed, as are cuts an earlier version tagged
    ``retired``. Written to a temporary name and renamed, so a process killed midway
    leaves no half file behind.
    """
    st = Path(model).stat()
    target = Path(cache) / f"{Path(model).stem}.{tag}.{st.st_size}-{st.st_mtime_ns}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    stale = list(target.parent.glob(f"{Path(model).stem}.{tag}.*.onnx"))
    for old_tag in retired:  # of any source file: earlier recipes cut the int8 variant
        stale += target.parent.glob(f"*.{old_tag}.*.onnx")
    for old in stale:
        if old != target:
            old.unlink(missing_ok=True)
    return target


class Encoder:
    """Unit-length 384-d embeddings as the head was trained on them: the shared MiniLM
    encoder (fp32) cut after ``layers`` layers, mean-pooled over the tokens, on
    ``THREADS`` threads, at most ``MAX_TOKENS`` tokens, one sentence (and one call) at a time; and,
    with ``deep_layers``, the layers after the cut as a second graph, so
    :meth:`deepen` carries a text the cut has encoded on to layer ``deep_layers``.

    (:class:`archivist_models.embeddings.Embedder` gives only the last layer's pooled
    output, so the few lines of its loop that apply are repeated here.)"""

    def __init__(self, folder: Path, threads: int = THREADS, layers: int = LAYERS,
                 cut_cache: Path | None = None, deep_layers: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta = recipe(folder)
        model = folder / meta.get("variants", {}).get("fp32", "model.onnx")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the embedder does
        opts.log_severity_level = 3

        def session(source: Any) -> Any:
            return ort.InferenceSession(source if isinstance(source, bytes) else str(source), opts,
                                        providers=["CPUExecutionProvider"])

        self.session = session(truncated_model(model, layers) if cut_cache is None
                               else cut_model_file(model, layers, cut_cache))
        self.tail: Any = None
        if deep_layers is not None and deep_layers > layers:
            self.tail = session(tail_model(model, layers, deep_layers) if cut_cache is None
                                else tail_model_file(model, layers, deep_layers, cut_cache))
        self.layers = layers
        self._lock = threading.Lock()
        self.recipe_version = int(meta.get("recipe_version", 0))

    @classmethod
    def for_home(cls, home: Path, cache: Path | None = None, threads: int = THREADS, layers: int = LAYERS,
                 deep_layers: int | None = None) -> Encoder:
        return cls(encoder_folder(home, cache), threads, layers, cut_cache=Path(home) / "plugins" / "safety" / "cache",
                   deep_layers=deep_layers)

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(the pooled unit vector, the hidden states it was pooled from), the second
        for :meth:`deepen`."""
        ids = np.array([self.tokenizer.encode(well_formed(text)).ids], dtype=np.int64)
        with self._lock:
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
        return _pooled(hidden[0]), hidden

    def deepen(self, hidden: np.ndarray) -> np.ndarray:
        """The pooled unit vector of layer ``deep_layers`` for hidden states :meth:`encode` gave."""
        if self.tail is None:
            raise RuntimeError("this encoder was made without deep_layers")
        mask = np.ones(hidden.shape[:2], dtype=np.int64)
        with self._lock:
            deeper = self.tail.run(None, {"hidden": hidden, "attention_mask": mask})[0]
        return _pooled(deeper[0])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self.encode(text)[0] for text in texts]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 384), np.float32)


def _pooled(hidden: np.ndarray) -> np.ndarray:
    v = hidden.mean(axis=0)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
