"""Run a converted ``model.onnx`` with onnxruntime directly: logits of every position."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def onnx_logits(model_dir: Path, tokens: list[int], threads: int = 2) -> np.ndarray:
    """Logits ``[len(tokens), vocab]`` from an empty KV cache (one prefill call)."""
    import onnxruntime as ort

    config = json.loads((Path(model_dir) / "genai_config.json").read_text())["model"]["decoder"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), options, providers=["CPUExecutionProvider"])
    feed = {
        "input_ids": np.asarray([tokens], dtype=np.int64),
        "attention_mask": np.ones((1, len(tokens)), dtype=np.int64),
    }
    empty = np.zeros((1, config["num_key_value_heads"], 0, config["head_size"]), dtype=np.float32)
    for i in range(config["num_hidden_layers"]):
        feed[f"past_key_values.{i}.key"] = empty
        feed[f"past_key_values.{i}.value"] = empty
    return session.run(["logits"], feed)[0][0]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Max abs difference over the max abs expected logit (scale-free, robust to tiny logits)."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())
