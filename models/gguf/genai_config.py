"""``genai_config.json``: how onnxruntime-genai drives the decoder graph.

Names of inputs and outputs must match ``graph.py``. The KV cache is shared between past and
present (``past_present_share_buffer``), which GroupQueryAttention requires on CPU; the
runtime then allocates the cache for ``search.max_length`` tokens up front, so callers
that never need the full context should lower ``max_length`` in their search options.
"""

from __future__ import annotations

from typing import Any

from .spec import ModelSpec
from .tokenizer import SpecialTokens


def genai_config(spec: ModelSpec, special: SpecialTokens, intra_op_threads: int | None = None) -> dict[str, Any]:
    """The configuration dict (``json.dump`` it as ``genai_config.json``)."""
    session_options: dict[str, Any] = {"log_id": "onnxruntime-genai", "provider_options": []}
    if intra_op_threads:
        session_options["intra_op_num_threads"] = intra_op_threads
    return {
        "model": {
            "bos_token_id": special.bos_id,
            "context_length": spec.context_length,
            "decoder": {
                "session_options": session_options,
                "filename": "model.onnx",
                "head_size": spec.head_size,
                "hidden_size": spec.hidden_size,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": spec.num_heads,
                "num_hidden_layers": spec.num_layers,
                "num_key_value_heads": spec.num_kv_heads,
            },
            "eos_token_id": special.eos_ids if len(special.eos_ids) > 1 else special.eos_ids[0],
            "pad_token_id": special.pad_id,
            "type": spec.architecture,
            "vocab_size": spec.vocab_size,
        },
        "search": {
            "diversity_penalty": 0.0,
            "do_sample": False,
            "early_stopping": True,
            "length_penalty": 1.0,
            "max_length": spec.context_length,
            "min_length": 0,
            "no_repeat_ngram_size": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": True,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }
