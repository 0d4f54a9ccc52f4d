"""The model in a child process: same answers, cancel, and no frozen caller threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from archivist.engine.process import ProcessModel
from archivist.engine.runtime import load_model
from archivist.errors import ModelLoadError
from archivist.types import ChatMessage, GenerationOptions, GenerationStats


@pytest.fixture(scope="module")
def remote(default_model_dir: Path):
    model = ProcessModel(default_model_dir, None)
    yield model
    model.close()


def test_it_answers_like_the_in_process_model(remote: ProcessModel, default_model_dir: Path) -> None:
    local = load_model(default_model_dir)
    try:
        messages = [ChatMessage("user", "What is 2 plus 2?")]
        prompt = remote.apply_chat_template(messages)
        assert prompt == local.apply_chat_template(messages)
        assert remote.count_tokens(prompt) == local.count_tokens(prompt)
        options = GenerationOptions(max_new_tokens=12)
        stats = GenerationStats()
        assert "".join(remote.stream(prompt, options, stats)) == "".join(local.stream(prompt, options))
        assert stats.completion_tokens > 0 and stats.prompt_tokens == local.count_tokens(prompt)
        assert remote.info.id == "smollm2-135m-instruct" and remote.provider == "cpu"
    finally:
        local.close()


def test_cancel_reaches_the_child(remote: ProcessModel) -> None:
    cancel = threading.Event()
    stats = GenerationStats()
    prompt = remote.apply_chat_template([ChatMessage("user", "Write a long story about a dragon.")])
    pieces = []
    for piece in remote.stream(prompt, GenerationOptions(max_new_tokens=300), stats, cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens < 60
    # The child is ready for the next request.
    assert remote.count_tokens("hello world") > 0


def test_a_caller_that_stops_reading_leaves_the_child_usable(remote: ProcessModel) -> None:
    prompt = remote.apply_chat_template([ChatMessage("user", "Count from one to fifty.")])
    stream = remote.stream(prompt, GenerationOptions(max_new_tokens=200))
    next(stream)
    stream.close()
    assert "".join(remote.stream(prompt, GenerationOptions(max_new_tokens=4)))


def test_a_folder_that_cannot_load_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "genai_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError):
        ProcessModel(tmp_path, None)


def _stream_with_asides(model: object, prompt: str) -> tuple[str, list[str]]:
    """Stream an answer; at its 3rd and 9th pieces, ask aside from another thread (as
    the plugin host's guard does when a judge screens a sentence) and wait for it."""
    answers: list[str] = []
    pieces = []
    question = [ChatMessage("user", "Is the sky green? Answer yes or no.")]
    for i, piece in enumerate(model.stream(prompt, GenerationOptions(max_new_tokens=30))):  # type: ignore[attr-defined]
        pieces.append(piece)
        if i in (2, 8):
            asker = threading.Thread(target=lambda: answers.append(model.answer_aside(question, 4, 30.0)))  # type: ignore[attr-defined]
            asker.start()
            asker.join(60)
            assert not asker.is_alive(), "the aside answer waited for the suspended stream"
    return "".join(pieces), answers


@pytest.mark.parametrize("where", ["in-process", "child process"])
def test_an_aside_answer_comes_while_a_stream_waits_and_leaves_the_stream_unchanged(
    where: str, remote: ProcessModel, default_model_dir: Path
) -> None:
    model = remote if where == "child process" else load_model(default_model_dir)
    prompt = model.apply_chat_template([ChatMessage("user", "Tell me about the sea.")])
    plain = "".join(model.stream(prompt, GenerationOptions(max_new_tokens=30)))
    streamed, answers = _stream_with_asides(model, prompt)
    alone = model.answer_aside([ChatMessage("user", "Is the sky green? Answer yes or no.")], 4, 30.0)
    assert streamed == plain  # greedy: the asides did not disturb the answer's state
    assert answers == [alone, alone] and alone
    # and the model still serves plain requests afterwards
    assert model.count_tokens("hello") > 0


def test_an_aside_past_its_time_raises_and_a_later_one_gets_its_own_answer(remote: ProcessModel) -> None:
    question = [ChatMessage("user", "Is the sky green? Answer yes or no.")]
    with pytest.raises(Exception, match=r"aside|within"):
        remote.answer_aside(question, 4, 1e-6)
    assert remote.answer_aside(question, 4, 30.0) == remote.answer_aside(question, 4, 30.0)


def test_an_exit_waits_for_a_model_process_still_being_started() -> None:
    """Exiting while Process.start() hands a spawned child its bootstrap data kills the
    child with an EOFError traceback (seen when the window closed at once): the exit
    hook waits for the start, and only for that."""
    import time

    from archivist import child_process

    held = threading.Event()

    def starting() -> None:
        with child_process._STARTING:
            held.set()
            time.sleep(0.4)

    threading.Thread(target=starting).start()
    held.wait(5)
    began = time.perf_counter()
    child_process._let_a_start_finish()
    assert time.perf_counter() - began >= 0.3  # it waited for the start in progress
    began = time.perf_counter()
    child_process._let_a_start_finish()
    assert time.perf_counter() - began < 0.1  # and returns at once when none is
