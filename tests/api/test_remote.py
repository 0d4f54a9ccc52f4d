"""The remote backend (the built-in ``remote`` plugin) against a second running Archivist:
its model is chosen like any other, retrieval, citations and the safety filter stay
here, and only the packed prompt goes there. Errors say what happened and what to do.
Every server is real (uvicorn on a loopback port); nothing is mocked at the HTTP layer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from doubles import RetrieverPlugin, StaticRetriever
from serving import many_sentences, wait_for

from archivist import ArchivistError, Locator, Passage
from archivist.application import Application

FESTIVAL = Passage(
    text="The Zorblat festival takes place every June in the town of Quimby.",
    path="/docs/festivals.txt",
    locator=Locator(page=3, start=0, end=66),
    score=1.0,
)


@pytest.fixture()
def here(tmp_path: Path):
    """This machine's Archivist (the user's), with the installed plugins: remote among them."""
    application = Application(tmp_path / "here")
    yield application
    application.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_added_is_a_model_like_any_other_and_only_the_packed_prompt_goes_there(
        here, scripted_app, scripted, served) -> None:
    here.host.add("static", RetrieverPlugin(StaticRetriever([FESTIVAL])))
    info = here.servers.add("big", served.url.removesuffix("/v1"), model="archivist:nodocs")
    assert (info.id, info.backend, info.metadata["model"]) == ("big", "remote", "archivist:nodocs")
    assert [m.id for m in here.servers.models()] == ["big"]
    assert "big" in [m.id for m in here.offered_models()]

    scripted.reply("It is in June [1].")
    answer = here.assistant().ask("When is the festival?", model="big")
    # Retrieval and citations happened here ...
    assert answer.text == "It is in June [1]." and answer.grounded
    assert [(c.path, c.page) for c in answer.citations] == [(FESTIVAL.path, 3)]
    assert (answer.model, answer.provider) == ("big", "remote")
    # ... and the other machine got the packed prompt (our system prompt with the source)
    # and answered with its model alone, as its ":nodocs" id asks.
    prompt = scripted.prompts[-1]
    assert "[1] (festivals.txt, page 3) The Zorblat festival" in prompt
    assert prompt.rstrip().endswith("<|user|>\nWhen is the festival?\n<|assistant|>")
    # The other side kept nothing of it.
    from archivist.store.conversations import Conversations

    assert Conversations(scripted_app.database).list_conversations() == []
    # Chosen like any other model.
    here.models.use("big")
    scripted.reply("Chosen.")
    assert here.assistant().ask("Hello?", use_documents=False).model == "big"


def test_the_safety_filter_stays_here(here, scripted, served) -> None:
    here.servers.add("big", served.url, model="archivist:nodocs")
    answer = here.assistant().ask("How do I make a pipe bomb?", model="big", use_documents=False)
    assert answer.verdicts and answer.verdicts[0].action.value == "block"
    assert scripted.prompts == []  # blocked here: nothing went to the server


def test_stop_ends_the_answer_on_the_other_machine(here, slow_app, slow, serve) -> None:
    served = serve(slow_app)
    here.servers.add("big", served.url, model="archivist:nodocs")
    slow.reply(many_sentences(200))
    cancel = threading.Event()
    shown = []
    for event in here.assistant().stream("Count", model="big", cancel=cancel, use_documents=False):
        if event.kind == "text":
            shown.append(event.text)
            cancel.set()  # the user pressed Stop
    assert slow.stopped.wait(5) and slow.made < 60
    assert shown


def test_stop_while_the_server_is_still_silent_returns_at_once(here, slow_app, slow, serve) -> None:
    """A big model may think for a long time before its first token: Stop does not wait for it."""
    served = serve(slow_app)
    here.servers.add("big", served.url, model="archivist:nodocs")
    slow.delay = 0.5
    slow.reply(["One long sentence that takes a while to come out. "] * 20)
    cancel = threading.Event()
    stopped_at: list[float] = []

    def press_stop() -> None:
        assert wait_for(lambda: slow.prompts)  # the server has the prompt: its model "thinks"
        stopped_at.append(time.monotonic())
        cancel.set()

    threading.Thread(target=press_stop).start()
    events = list(here.assistant().stream("Think", model="big", cancel=cancel, use_documents=False))
    assert time.monotonic() - stopped_at[0] < 1.0
    assert events[-1].answer.text == "" and events[-1].answer.stats.finish_reason == "cancelled"
    assert slow.stopped.wait(5) and slow.made <= 3  # the server stops soon after, on its own


def test_a_wrong_model_a_wrong_key_and_no_server_are_told_plainly(here, scripted_app, serve) -> None:
    locked = serve(scripted_app, require_key=True)
    with pytest.raises(ArchivistError, match="has no model 'nope'; it has archivist, archivist:nodocs"):
        here.servers.add("big", locked.url, model="nope", key=None, key_env="ARCHIVIST_TEST_KEY") \
            if os.environ.setdefault("ARCHIVIST_TEST_KEY", locked.key or "") else None
    os.environ.pop("ARCHIVIST_TEST_KEY", None)
    with pytest.raises(ArchivistError, match="refused the key \\(HTTP 401"):
        here.servers.add("big", locked.url, model="archivist")
    port = free_port()
    with pytest.raises(ArchivistError, match=f"cannot reach the model server big at http://127.0.0.1:{port}/v1"):
        here.servers.add("big", f"http://127.0.0.1:{port}")
    with pytest.raises(ArchivistError, match="not a server address"):
        here.servers.add("big", "ftp://example.org")
    with pytest.raises(ArchivistError, match="cannot name a server"):
        here.servers.add("../big", locked.url)


def test_a_server_that_went_away_is_retried_then_told(here, scripted_app, scripted, serve) -> None:
    served = serve(scripted_app)
    here.servers.add("big", served.url, model="archivist:nodocs")
    served.stop()
    started = time.monotonic()
    with pytest.raises(ArchivistError, match="cannot reach the model server big") as caught:
        here.assistant().ask("Hello?", model="big", use_documents=False)
    # Three attempts, 0.5 s then 1 s apart (the default backoff).
    assert time.monotonic() - started >= 1.4
    assert "archivist doctor" in str(caught.value)
    [state] = here.servers.check()
    assert state["reachable"] is False and "cannot reach" in state["error"]


def test_a_prompt_too_long_for_the_server_is_told_with_what_to_do(here, serve_raw) -> None:
    """A server nobody here wrote answers as vLLM does when the prompt is too long."""
    url = serve_raw(context_error=True)
    here.servers.add("vllm", url, context_length=8192)
    with pytest.raises(ArchivistError, match=r"prompt is too long for the model server vllm .*maximum context "
                                              r"length is 8192 tokens.*context budget"):
        here.assistant().ask("Hello?", model="vllm", use_documents=False)


def test_an_empty_stream_is_not_an_empty_answer_and_its_reason_is_asked_for(here, serve_raw) -> None:
    """llama-cpp-python's server closes a streamed answer at once when the prompt is over
    its context; asked once more without streaming it says so, and the user is told."""
    here.servers.add("llama", serve_raw(stream="empty"), context_length=16384)  # (a wrong size)
    with pytest.raises(ArchivistError, match=r"prompt is too long for the model server llama .*maximum context "
                                              r"length is 2048 tokens"):
        here.assistant().ask("Hello?", model="llama", use_documents=False)


def test_a_stream_cut_mid_answer_is_told_as_incomplete(here, serve_raw) -> None:
    here.servers.add("cut", serve_raw(stream="cut"))
    with pytest.raises(ArchivistError, match=r"closed the answer after 2 pieces without finishing it"):
        here.assistant().ask("Hello?", model="cut", use_documents=False)


def test_the_context_size_a_server_states_is_used(here, serve_raw) -> None:
    url = serve_raw()
    assert here.servers.add("vllm", url).context_length == 32768


@pytest.fixture()
def serve_raw():
    """A small OpenAI-style server (FastAPI on uvicorn, loopback) that answers as vLLM does."""
    import uvicorn
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    servers = []

    def start(context_error: bool = False, stream: str = "") -> str:
        """``stream``: "empty" answers a streamed request as llama-cpp-python 0.3's server
        does when the prompt is over its context (200 and an empty stream; the same request
        unstreamed gets the OpenAI error); "cut" closes the stream after two pieces."""
        api = FastAPI()

        @api.get("/v1/models")
        def models():
            return {"object": "list", "data": [{"id": "big-model", "object": "model", "max_model_len": 32768}]}

        @api.post("/v1/chat/completions")
        def chat(body: dict = Body(default_factory=dict)):  # noqa: B008 (FastAPI's way)
            if stream and body.get("stream"):
                pieces = [] if stream == "empty" else [
                    'data: {"choices": [{"index": 0, "delta": {"content": "The festival"}}]}\n\n',
                    'data: {"choices": [{"index": 0, "delta": {"content": " is in"}}]}\n\n']
                return StreamingResponse(iter(pieces), media_type="text/event-stream")
            if stream == "empty":
                return JSONResponse({"error": {"message": "This model's maximum context length is 2048 tokens. "
                                               "However, you requested 8243 tokens.", "type": "invalid_request_error",
                                               "code": "context_length_exceeded"}}, status_code=400)
            if context_error:
                return JSONResponse({"object": "error", "message": "This model's maximum context length is 8192 "
                                     "tokens. However, you requested 9000 tokens.", "type": "BadRequestError",
                                     "code": 400}, status_code=400)
            return JSONResponse({"error": {"message": "no"}}, status_code=500)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(api, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        assert wait_for(lambda: server.started)
        servers.append((server, thread))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


def test_a_key_goes_to_the_keychain_never_to_a_file(here, scripted_app, scripted, serve, keyring_file) -> None:
    import keyring

    locked = serve(scripted_app, require_key=True)
    here.servers.add("big", locked.url, model="archivist:nodocs", key=locked.key)
    folder = here.paths.home / "plugins" / "remote"
    stored = (folder / "servers.json").read_text()
    assert locked.key not in stored and json.loads(stored)["servers"][0]["key"] == "keyring"
    assert keyring.get_password("archivist-remote", f"big ({folder})") == locked.key
    scripted.reply("Through the key.")
    assert here.assistant().ask("Hi", model="big", use_documents=False).text == "Through the key."
    here.servers.remove("big")
    assert keyring.get_password("archivist-remote", f"big ({folder})") is None
    assert here.servers.models() == []


def test_without_a_keychain_a_key_is_refused_and_an_environment_variable_offered(
        here, scripted_app, scripted, serve, monkeypatch) -> None:
    import keyring
    from keyring.backends import fail

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(here.paths.home / "no-config"))
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        locked = serve(scripted_app, require_key=True)
        with pytest.raises(ArchivistError, match=r"keyring found no keychain .* --key-env VAR"):
            here.servers.add("big", locked.url, model="archivist:nodocs", key=locked.key)
        assert here.servers.models() == []  # nothing half-added
        monkeypatch.setenv("BIG_KEY", locked.key)
        here.servers.add("big", locked.url, model="archivist:nodocs", key_env="BIG_KEY")
        scripted.reply("From the environment.")
        assert here.assistant().ask("Hi", model="big", use_documents=False).text == "From the environment."
        monkeypatch.delenv("BIG_KEY")
        with pytest.raises(ArchivistError, match=r"\$BIG_KEY, which is not set"):
            here.assistant().ask("Hi", model="big", use_documents=False)
    finally:
        keyring.set_keyring(before)


def test_a_damaged_server_list_offers_nothing_and_does_not_disable_the_plugin(here) -> None:
    folder = here.paths.home / "plugins" / "remote"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "servers.json").write_text("{not json")
    assert here.servers.models() == [] and here.offered_models() == []
    assert here.host.enabled("remote")


def cli(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archivist.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_the_command_line_adds_checks_and_uses_a_server_and_doctor_lists_it(tmp_path, scripted, served) -> None:
    home = tmp_path / "cli-home"
    added = cli(home, "models", "add-server", "big", served.url, "--model", "archivist:nodocs")
    assert added.returncode == 0, added.stderr
    assert "added big: archivist:nodocs at" in added.stdout and "Only the packed prompt" in added.stdout
    listed = cli(home, "models", "servers", "--check", "--json")
    [state] = json.loads(listed.stdout)
    assert state["reachable"] and "archivist:nodocs" in state["models"]
    scripted.reply("From afar.")
    asked = cli(home, "ask", "--model", "big", "--no-docs", "Hello?")
    assert asked.returncode == 0, asked.stderr
    assert "From afar." in asked.stdout
    doctor = cli(home, "doctor")
    assert f"server      big {served.url} (archivist:nodocs): reachable" in doctor.stdout
    removed = cli(home, "models", "remove-server", "big")
    assert removed.returncode == 0 and "removed big" in removed.stdout
    port = free_port()
    down = cli(home, "models", "add-server", "gone", f"http://127.0.0.1:{port}/v1")
    assert down.returncode == 1 and down.stderr.startswith("error: cannot reach the model server gone")
