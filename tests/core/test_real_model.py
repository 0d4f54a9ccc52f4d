"""What the real built-in model must do on any CPU: load, count, stream, stop.

None of these assert the words it picks. Its int4 kernels differ between instruction
sets (AVX2, AVX-512, NEON), and where two tokens are nearly tied a different one wins,
so an expectation about its words holds on one machine and fails on the next. What it
*does* holds everywhere: it loads from the folder the recipe built, its tokenizer counts
what generation sees, it streams pieces as it decodes, it stops at the token budget, at
its end-of-turn token and when cancelled. The pipeline around it is tested on the
scripted model (``archivist.testing``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from archivist import ChatMessage, GenerationOptions, GenerationStats, LoadedModel

LONG = "Write a long story about a dragon who learns to read."


@pytest.fixture(scope="module")
def model(default_model_dir: Path):
    from archivist.engine.runtime import load_model

    loaded = load_model(default_model_dir)
    yield loaded
    loaded.close()


def prompt(model, question: str) -> str:
    return model.apply_chat_template([ChatMessage("user", question)])


def generate(model, question: str, max_new_tokens: int, cancel: threading.Event | None = None):
    stats = GenerationStats()
    pieces = []
    for piece in model.stream(prompt(model, question), GenerationOptions(max_new_tokens=max_new_tokens),
                              stats, cancel):
        pieces.append(piece)
        if cancel is not None:
            cancel.set()
    return pieces, stats


def test_it_loads_as_the_built_in_model(model, default_model_dir: Path) -> None:
    from archivist.engine.runtime import available_providers

    assert isinstance(model, LoadedModel)
    assert model.info.id == "smollm2-135m-instruct"
    assert Path(model.info.path) == default_model_dir.resolve()
    assert model.provider in available_providers()


def test_its_tokenizer_counts_what_generation_sees(model) -> None:
    assert model.count_tokens("") == 0
    assert model.count_tokens("hello") >= 1
    assert model.count_tokens("hello " * 50) > model.count_tokens("hello " * 5)
    text = prompt(model, "Name a colour.")
    _, stats = generate(model, "Name a colour.", 2)
    assert stats.prompt_tokens == model.count_tokens(text)


def test_the_chat_template_ends_where_the_answer_starts(model) -> None:
    text = model.apply_chat_template([ChatMessage("system", "Be brief."), ChatMessage("user", "Why?")])
    assert text.index("Be brief.") < text.index("Why?")
    assert text.rstrip().endswith("assistant"), text[-40:]


def test_it_streams_pieces_as_it_decodes(model) -> None:
    pieces, stats = generate(model, LONG, 16)
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces).strip()
    assert len(pieces) <= stats.completion_tokens
    assert stats.ttft_ms is not None and 0 < stats.ttft_ms <= stats.total_ms
    assert stats.tokens_per_s and stats.tokens_per_s > 0


@pytest.mark.parametrize("budget", [1, 6])
def test_it_stops_at_max_new_tokens(model, budget: int) -> None:
    _, stats = generate(model, LONG, budget)
    assert stats.completion_tokens == budget
    assert stats.finish_reason == "length"


def test_it_stops_at_its_end_of_turn_token(model) -> None:
    pieces, stats = generate(model, "Say hello.", 200)
    assert stats.finish_reason == "stop"
    assert 0 < stats.completion_tokens < 200
    text = "".join(pieces)
    assert text.strip()
    # The end-of-turn token ends generation; it is not decoded into the answer.
    assert "<|im_end|>" not in text and "<|im_start|>" not in text


def test_cancel_stops_it_between_tokens(model) -> None:
    cancel = threading.Event()
    pieces, stats = generate(model, LONG, 200, cancel)
    assert stats.finish_reason == "cancelled"
    assert len(pieces) == 1 and stats.completion_tokens < 5
