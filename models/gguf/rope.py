"""The cos/sin caches GroupQueryAttention rotates queries and keys with.

Plain rope (``theta**(-2i/d)`` per frequency), llama 3.1's fixed per-frequency divisors
(``rope_freqs``) and Phi-3's LongRoPE, whose two divisor sets are switched inside the graph
by sequence length. The rotation itself (interleaved pairs for llama/mistral, NeoX halves
for qwen2/phi3) is GroupQueryAttention's ``rotary_interleaved`` attribute, set in
``graph.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import onnx
from onnx import TensorProto, helper

from .source import GGUFSource
from .spec import ModelSpec


class GraphBuilder(Protocol):
    """What :func:`rope_inputs` needs of the graph being built (``graph._GraphBuilder``),
    as a Protocol so that this module need not import the one that imports it."""

    def node(self, op: str, inputs: list[str], name: str, n_outputs: int = 1, domain: str = "",
             **attrs: Any) -> list[str]: ...

    def weight(self, name: str, array: np.ndarray) -> str: ...

    def constant(self, array: np.ndarray) -> str: ...


def rope_caches(
    spec: ModelSpec, factors: np.ndarray | None = None, length: int | None = None, scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``cos``/``sin`` of ``position * theta**(-2i/d) / factors[i]``, times ``scale``.

    Shape ``[length, head_size/2]`` (``length`` defaults to the context length). ``factors``
    are llama 3.1's ``rope_freqs`` or one of Phi-3's LongRoPE sets; ``scale`` is LongRoPE's
    attention factor (GroupQueryAttention multiplies q and k by these caches, so scaling
    both by ``m`` scales the attention logits by ``m**2``, as llama.cpp and HF do).
    """
    inv_freq = 1.0 / (spec.rope_theta ** (np.arange(0, spec.head_size, 2, dtype=np.float64) / spec.head_size))
    if factors is not None:
        inv_freq = inv_freq / factors.astype(np.float64)
    angles = np.outer(np.arange(length or spec.context_length, dtype=np.float64), inv_freq)
    return (np.cos(angles) * scale).astype(np.float32), (np.sin(angles) * scale).astype(np.float32)


def rope_inputs(g: GraphBuilder, source: GGUFSource, spec: ModelSpec, total: str) -> tuple[str, str]:
    """The cos/sin caches GroupQueryAttention reads.

    LongRoPE (Phi-3 128k) has two sets, and like onnxruntime-genai's own builder the graph
    picks one per call with an ``If`` on the total sequence length: the short factors up to
    ``original_context_length`` tokens, the long ones beyond. Both caches are initializers
    of the main graph that the branches hand out (outer-scope values), stored once.
    """
    if not spec.long_rope:
        factors = source.vector("rope_freqs.weight") if "rope_freqs.weight" in source.tensors else None
        cos, sin = rope_caches(spec, factors)
        return g.weight("model.rope.cos_cache", cos), g.weight("model.rope.sin_cache", sin)
    assert spec.original_context_length is not None
    names = {}
    for kind, length in (("short", spec.original_context_length), ("long", spec.context_length)):
        cos, sin = rope_caches(spec, source.vector(f"rope_factors_{kind}.weight"), length, spec.rope_attn_factor)
        names[kind] = (g.weight(f"model.rope.cos_cache_{kind}", cos), g.weight(f"model.rope.sin_cache_{kind}", sin))
    (longer,) = g.node("Greater", [total, g.constant(np.array(spec.original_context_length, np.int64))],
                       "/model/rope/Greater")

    def branch(kind: str) -> onnx.GraphProto:
        cos, sin = names[kind]
        outs = [f"/model/rope/{kind}/cos", f"/model/rope/{kind}/sin"]
        return helper.make_graph(
            [helper.make_node("Identity", [cos], [outs[0]], name=f"/model/rope/{kind}/cos/Identity"),
             helper.make_node("Identity", [sin], [outs[1]], name=f"/model/rope/{kind}/sin/Identity")],
            f"rope_{kind}", [],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        )

    cos_name, sin_name = g.node("If", [longer], "/model/rope/If", n_outputs=2,
                                then_branch=branch("long"), else_branch=branch("short"))
    return cos_name, sin_name
