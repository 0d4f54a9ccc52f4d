"""The ONNX decoder graph for llama-family models (llama, mistral, qwen2, phi3), as
onnxruntime-genai runs it.

Inputs and outputs follow onnxruntime-genai's conventions (as its official model builder
produces them): ``input_ids``, ``attention_mask``, ``past_key_values.{i}.key/value`` in,
``logits`` and ``present.{i}.key/value`` out, with the KV cache shared between past and
present (``past_present_share_buffer``). The graph uses ONNX Runtime's fused contrib
operators so decoding at batch 1 stays lean:

* ``MatMulNBits`` for every packed weight (see ``packing.py``), Q/K/V and gate/up fused;
* ``GroupQueryAttention`` with the rotary embedding done inside the kernel
  (``do_rotary``; positions come from the attention mask, so no ``position_ids`` input);
* ``SimplifiedLayerNormalization`` / ``SkipSimplifiedLayerNormalization`` for RMSNorm and
  the residual adds;
* ``GatherBlockQuantized`` to look tokens up directly in the quantized embedding (4 or 8
  bits, plus the block offsets of asymmetric formats), which is the very tensor a tied
  output head's ``MatMulNBits`` reads (stored once).

Architectures differ only in a few places: qwen2 adds Q/K/V biases; phi3 stores Q/K/V and
gate/up already fused; qwen2 and phi3 rotate NeoX-style (``rotary_interleaved=0``);
Phi-3 128k models switch between two rope caches (LongRoPE, see ``rope.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from archivist.errors import ConversionError

from .external_data import ExternalDataWriter, small_tensor
from .packing import PACKERS, PackedLinear, concat_rows
from .rope import rope_inputs
from .source import GGUFSource
from .spec import ModelSpec

OPSET = 21
MS_DOMAIN = "com.microsoft"

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class GraphOptions:
    """Knobs of the graph that trade exactness for speed (MatMulNBits ``accuracy_level``).

    Level 4 (the default) quantizes activations to int8 per block of 32 inside the kernel,
    the same thing llama.cpp does in its quantized dot products; weights stay exactly the
    GGUF's. Measured on SmolLM2-135M (2 CPU threads): about 3x the decode speed of level 0,
    perplexity +0.5%, logits within ~5% of their range of the float reference, so greedy
    output can differ on near ties. Level 0 computes in float32 and matches the float
    reference to ~1e-6 (``exact()``), but ORT has no fast float32 kernel for the 8-bit
    output head (~0.5 s per token), so ``head_accuracy_level`` is separate.
    """

    accuracy_level: int = 4
    head_accuracy_level: int = 4

    @classmethod
    def exact(cls) -> GraphOptions:
        """Bit-faithful to the GGUF values everywhere (slow head; for verification)."""
        return cls(accuracy_level=0, head_accuracy_level=0)

    @classmethod
    def fast(cls) -> GraphOptions:
        """int8 activations everywhere: llama.cpp-like numerics and speed."""
        return cls(accuracy_level=4, head_accuracy_level=4)


@dataclass
class _GraphBuilder:
    """Accumulates nodes, initializers and value infos while the decoder is laid out."""

    weights: ExternalDataWriter
    options: GraphOptions
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[TensorProto] = field(default_factory=list)
    _constants: dict[str, str] = field(default_factory=dict)
    _block_sums: dict[tuple[str, int], str] = field(default_factory=dict)

    def node(self, op: str, inputs: list[str], name: str, n_outputs: int = 1, domain: str = "", **attrs) -> list[str]:
        outputs = [f"{name}/output_{i}" for i in range(n_outputs)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs

    def weight(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.weights.add(name, array))
        return name

    def constant(self, array: np.ndarray) -> str:
        """A small inline constant, deduplicated by value."""
        arr = np.asarray(array)
        key = f"/constants/{arr.dtype}/{arr.shape}/{arr.tobytes().hex()}"
        if key not in self._constants:
            name = f"/constants/{len(self._constants)}"
            self.initializers.append(small_tensor(name, arr))
            self._constants[key] = name
        return self._constants[key]

    def block_sums(self, x: str, k: int, block: int) -> str:
        """``sum(x[..., j*block:(j+1)*block])`` for each block j: ``[B, S, k/block]``.

        Shared by every asymmetric matmul that reads ``x`` (Q/K/V fused, gate/up fused).
        """
        key = (x, block)
        if key not in self._block_sums:
            name = f"{x}/BlockSums"
            (r,) = self.node("Reshape", [x, self.constant(np.array([0, 0, k // block, block], np.int64))], f"{name}/Reshape")
            (s,) = self.node("ReduceSum", [r, self.constant(np.array([-1], np.int64))], f"{name}/ReduceSum", keepdims=0)
            self._block_sums[key] = s
        return self._block_sums[key]

    def linear(self, name: str, x: str, w: PackedLinear, accuracy_level: int | None = None) -> str:
        """``x @ W.T`` for a packed weight: MatMulNBits, plus the offset term if any."""
        if w.dense is not None:
            wt = self.weight(f"{name}.weight", np.ascontiguousarray(w.dense.T))
            return self.node("MatMul", [x, wt], f"{name}/MatMul")[0]
        assert w.quantized is not None and w.scales is not None  # not dense: packed
        b = self.weight(f"{name}.qweight", w.quantized)
        s = self.weight(f"{name}.scales", w.scales)
        (y,) = self.node(
            "MatMulNBits", [x, b, s], f"{name}/MatMulNBits", domain=MS_DOMAIN,
            K=w.k, N=w.n, bits=w.bits, block_size=w.block_size,
            accuracy_level=self.options.accuracy_level if accuracy_level is None else accuracy_level,
        )
        if w.offsets is None:
            return y
        sums = self.block_sums(x, w.k, w.block_size)
        o = self.weight(f"{name}.block_offsets", w.offsets)
        (corr,) = self.node("MatMul", [sums, o], f"{name}/BlockOffsets/MatMul")
        return self.node("Add", [y, corr], f"{name}/BlockOffsets/Add")[0]


def _pack(source: GGUFSource, name: str) -> PackedLinear:
    tensor = source.tensor(name)
    packer = PACKERS.get(tensor.tensor_type)
    if packer is None:
        raise ConversionError(f"Unsupported tensor type {tensor.tensor_type.name} for {name}.")
    n, k = source.matrix_shape(name)
    try:
        return packer(tensor.data, n, k)
    except ValueError as exc:  # a shape the format cannot hold (rows not whole blocks)
        raise ConversionError(f"Tensor {name} ({tensor.tensor_type.name}, {n}x{k}) cannot be read: {exc}") from exc


def _fused(source: GGUFSource, names: list[str]) -> PackedLinear | list[PackedLinear]:
    """Pack linears that share an input, fused into one when their formats agree."""
    parts = [_pack(source, n) for n in names]
    try:
        return concat_rows(parts)
    except ValueError:
        return parts


def _fused_linear(g: _GraphBuilder, name: str, x: str, w: PackedLinear | list[PackedLinear], labels: list[str]) -> str:
    if isinstance(w, PackedLinear):
        return g.linear(name, x, w)
    outs = [g.linear(f"{name}/{label}", x, part) for label, part in zip(labels, w)]
    return g.node("Concat", outs, f"{name}/Concat", axis=-1)[0]


def check_tensor_types(source: GGUFSource) -> None:
    """Fail early, naming the first tensor whose GGML type has no packer."""
    for t in source.reader.tensors:
        if t.tensor_type not in PACKERS:
            raise ConversionError(f"Unsupported tensor type {t.tensor_type.name} (tensor {t.name}).")


def _qkv(g: _GraphBuilder, source: GGUFSource, spec: ModelSpec, i: int, x: str) -> str:
    """Q, K and V side by side (``[B, S, (heads + 2*kv_heads) * head_size]``) for GQA."""
    p, base = f"blk.{i}", f"/model/layers.{i}/attn/qkv_proj"
    if spec.fused_qkv and f"{p}.attn_qkv.weight" in source.tensors:  # phi3: one matrix, Q, K then V rows
        qkv = g.linear(base, x, _pack(source, f"{p}.attn_qkv.weight"))
    else:
        names = [f"{p}.attn_q.weight", f"{p}.attn_k.weight", f"{p}.attn_v.weight"]
        qkv = _fused_linear(g, base, x, _fused(source, names), ["q", "k", "v"])
    if spec.qkv_bias:
        bias = np.concatenate([source.vector(f"{p}.attn_{part}.bias") for part in "qkv"])
        qkv = g.node("Add", [qkv, g.weight(f"model.layers.{i}.attn.qkv_proj.bias", bias)], f"{base}/Add")[0]
    return qkv


def _embedding(g: _GraphBuilder, embd: PackedLinear, h: int) -> tuple[str, str | None]:
    """Look tokens up in the embedding; return the hidden states and the quantized table.

    A quantized table stays quantized (``GatherBlockQuantized``, 4 or 8 bits, any block),
    with the per-block offsets of asymmetric formats gathered alongside and added, so the
    rows are exactly the GGUF's. A tied output head then reads the same table.
    """
    if embd.quantized is None:
        table = g.weight("model.embed_tokens.weight", embd.dequantize())
        return g.node("Gather", [table, "input_ids"], "/model/embed_tokens/Gather", axis=0)[0], None
    base = "/model/embed_tokens"
    assert embd.scales is not None  # quantized: packed with its scales
    table = g.weight("model.embed_tokens.qweight", embd.quantized)
    scales = g.weight("model.embed_tokens.scales", embd.scales[:, :, None])
    (rows,) = g.node(
        "GatherBlockQuantized", [table, "input_ids", scales],
        f"{base}/GatherBlockQuantized", domain=MS_DOMAIN,
        gather_axis=0, quantize_axis=2, block_size=embd.block_size, bits=embd.bits,
    )
    if embd.offsets is not None:  # rows are [B, S, blocks, block]: add each block's offset
        offsets = g.weight("model.embed_tokens.block_offsets", np.ascontiguousarray(embd.offsets.T))
        (o,) = g.node("Gather", [offsets, "input_ids"], f"{base}/BlockOffsets/Gather", axis=0)
        (o,) = g.node("Unsqueeze", [o, g.constant(np.array([-1], np.int64))], f"{base}/BlockOffsets/Unsqueeze")
        (rows,) = g.node("Add", [rows, o], f"{base}/BlockOffsets/Add")
    (x,) = g.node("Reshape", [rows, g.constant(np.array([0, 0, h], np.int64))], f"{base}/Reshape")
    return x, table


def build_decoder(
    source: GGUFSource,
    spec: ModelSpec,
    weights: ExternalDataWriter,
    options: GraphOptions = GraphOptions(),
    progress: Progress | None = None,
) -> onnx.ModelProto:
    """Lay out the whole decoder; weights stream into ``weights`` as layers are packed."""
    check_tensor_types(source)
    g = _GraphBuilder(weights, options)
    h, kv, hd = spec.hidden_size, spec.num_kv_heads, spec.head_size
    eps = spec.rms_norm_eps

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", spec.vocab_size])]
    for i in range(spec.num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch_size", kv, "past_sequence_length", hd]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kind}", TensorProto.FLOAT, ["batch_size", kv, "total_sequence_length", hd]))

    # Token embedding (and, when tied, the output head reading the same initializer).
    embd = _pack(source, "token_embd.weight")
    x, quantized_table = _embedding(g, embd, h)
    if progress:
        progress("embedding", 0.05)

    # attention_mask -> seqlens_k (int32[B], tokens so far minus one) and total length.
    (mask_sum,) = g.node("ReduceSum", ["attention_mask", g.constant(np.array([1], np.int64))], "/model/mask/ReduceSum", keepdims=0)
    (seqlens,) = g.node("Sub", [mask_sum, g.constant(np.array(1, np.int64))], "/model/mask/Sub")
    (seqlens_k,) = g.node("Cast", [seqlens], "/model/mask/Sub/Cast", to=TensorProto.INT32)
    (mask_shape,) = g.node("Shape", ["attention_mask"], "/model/mask/Shape")
    (total,) = g.node("Gather", [mask_shape, g.constant(np.array(1, np.int64))], "/model/mask/Gather", axis=0)
    (total_len,) = g.node("Cast", [total], "/model/mask/Gather/Cast", to=TensorProto.INT32)

    cos_name, sin_name = rope_inputs(g, source, spec, total)

    residual: str | None = None
    pending = x  # the value to add to the residual stream at the next norm
    for i in range(spec.num_layers):
        p = f"blk.{i}"
        base = f"/model/layers.{i}"
        norm = g.weight(f"model.layers.{i}.input_layernorm.weight", source.vector(f"{p}.attn_norm.weight"))
        if residual is None:
            (hn,) = g.node("SimplifiedLayerNormalization", [pending, norm], f"{base}/input_layernorm/LayerNorm",
                           axis=-1, epsilon=eps, stash_type=1)
            residual = pending
        else:
            hn, _, _, residual = g.node("SkipSimplifiedLayerNormalization", [pending, residual, norm],
                                        f"{base}/input_layernorm/SkipLayerNorm", n_outputs=4, domain=MS_DOMAIN, epsilon=eps)

        qkv = _qkv(g, source, spec, i, hn)
        attn, present_k, present_v = (f"{base}/attn/GroupQueryAttention/output_0", f"present.{i}.key", f"present.{i}.value")
        g.nodes.append(helper.make_node(
            "GroupQueryAttention",
            [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens_k, total_len, cos_name, sin_name],
            [attn, present_k, present_v], name=f"{base}/attn/GroupQueryAttention", domain=MS_DOMAIN,
            num_heads=spec.num_heads, kv_num_heads=kv, scale=float(1.0 / np.sqrt(hd)), local_window_size=-1,
            do_rotary=1, rotary_interleaved=int(spec.rope_interleaved),
        ))
        o = g.linear(f"{base}/attn/o_proj", attn, _pack(source, f"{p}.attn_output.weight"))

        norm2 = g.weight(f"model.layers.{i}.post_attention_layernorm.weight", source.vector(f"{p}.ffn_norm.weight"))
        hn2, _, _, residual = g.node("SkipSimplifiedLayerNormalization", [o, residual, norm2],
                                     f"{base}/post_attention_layernorm/SkipLayerNorm", n_outputs=4, domain=MS_DOMAIN,
                                     epsilon=eps)
        if not spec.fused_gate_up or f"{p}.ffn_gate.weight" in source.tensors:
            gu_w = _fused(source, [f"{p}.ffn_gate.weight", f"{p}.ffn_up.weight"])
        else:  # phi3: ffn_up already holds the gate rows, then the up rows
            gu_w = _pack(source, f"{p}.ffn_up.weight")
        gu = _fused_linear(g, f"{base}/mlp/gate_up_proj", hn2, gu_w, ["gate", "up"])
        gate, up = g.node("Split", [gu, g.constant(np.array([spec.intermediate_size] * 2, np.int64))],
                          f"{base}/mlp/Split", n_outputs=2, axis=-1)
        (sig,) = g.node("Sigmoid", [gate], f"{base}/mlp/act_fn/Sigmoid")
        (silu,) = g.node("Mul", [gate, sig], f"{base}/mlp/act_fn/Mul")
        (act,) = g.node("Mul", [silu, up], f"{base}/mlp/Mul")
        pending = g.linear(f"{base}/mlp/down_proj", act, _pack(source, f"{p}.ffn_down.weight"))
        if progress:
            progress(f"layer {i + 1}/{spec.num_layers}", 0.05 + 0.9 * (i + 1) / spec.num_layers)

    final_norm = g.weight("model.norm.weight", source.vector("output_norm.weight"))
    assert residual is not None  # set by the first layer (a model has layers)
    hf, _, _, _ = g.node("SkipSimplifiedLayerNormalization", [pending, residual, final_norm],
                         "/model/norm/SkipLayerNorm", n_outputs=4, domain=MS_DOMAIN, epsilon=eps)
    if spec.tied_embeddings and quantized_table is not None:
        head = _head_on_table(g, hf, embd, quantized_table)
    else:
        head = g.linear("/lm_head", hf, embd if spec.tied_embeddings else _pack(source, "output.weight"),
                        accuracy_level=options.head_accuracy_level)
    g.nodes.append(helper.make_node("Identity", [head], ["logits"], name="/lm_head/Identity"))

    graph = helper.make_graph(g.nodes, "archivist-gguf-decoder", inputs, outputs, initializer=g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="archivist_models.gguf",
    )
    model.ir_version = 10
    return model


def _head_on_table(g: _GraphBuilder, x: str, w: PackedLinear, table: str) -> str:
    """The tied output head: MatMulNBits over the embedding's own quantized table."""
    assert w.scales is not None  # the table is quantized, so are its scales
    scales = g.weight("lm_head.scales", w.scales)
    (y,) = g.node(
        "MatMulNBits", [x, table, scales], "/lm_head/MatMulNBits", domain=MS_DOMAIN,
        K=w.k, N=w.n, bits=w.bits, block_size=w.block_size, accuracy_level=g.options.head_accuracy_level,
    )
    if w.offsets is not None:
        sums = g.block_sums(x, w.k, w.block_size)
        (corr,) = g.node("MatMul", [sums, g.weight("lm_head.block_offsets", w.offsets)], "/lm_head/BlockOffsets/MatMul")
        (y,) = g.node("Add", [y, corr], "/lm_head/BlockOffsets/Add")
    return y
