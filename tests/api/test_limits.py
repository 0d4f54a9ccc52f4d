"""Secure by default: loopback unless told, a key off loopback (shown once, kept hashed),
no CORS unless configured; one answer at a time behind a bounded queue (429 when full,
503 after a wait too long); a client that goes away stops its answer."""

from __future__ import annotations

import hashlib
import threading
import time

import httpx
import openai
import pytest
from serving import many_sentences, wait_for

from archivist.api import keys
from archivist.api.routes import create_app
from archivist.api.settings import ServeSettings, is_loopback
from archivist.errors import ArchivistError


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("my-laptop.local", False),
])
def test_only_loopback_addresses_go_without_a_key(host, loopback) -> None:
    assert is_loopback(host) is loopback
    assert ServeSettings(host=host).needs_key is not loopback


def test_off_loopback_the_app_will_not_start_without_a_key(scripted_app) -> None:
    with pytest.raises(ArchivistError, match="needs an API key"):
        create_app(scripted_app, ServeSettings(host="0.0.0.0"), key_digest=None)


def test_the_key_is_shown_once_and_kept_only_as_its_hash(scripted_app, scripted, serve) -> None:
    served = serve(scripted_app, require_key=True)
    assert served.key and served.key.startswith("sk-archivist-")
    stored = scripted_app.settings().get(keys.KEY_SETTING)
    assert stored == hashlib.sha256(served.key.encode()).hexdigest()
    assert served.key not in str(scripted_app.settings().all())
    scripted.reply("Yes.")
    assert served.client(key=served.key).chat.completions.create(model="scripted", messages=ask("ok?"))
    with pytest.raises(openai.AuthenticationError, match="a wrong API key"):
        served.client(key="sk-archivist-guess").models.list()
    response = httpx.get(f"{served.url}/models")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "no API key" in response.json()["error"]["message"]
    # A second server on the same home keeps the key; --new-key replaces it.
    again = serve(scripted_app, require_key=True)
    assert again.key is None and again.client(key=served.key).models.list()
    renewed = serve(scripted_app, require_key=True, new_key=True)
    with pytest.raises(openai.AuthenticationError):
        renewed.client(key=served.key).models.list()


def test_cors_is_off_unless_an_origin_is_configured(scripted_app, serve) -> None:
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    closed = serve(scripted_app)
    response = httpx.options(f"{closed.url}/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    opened = serve(scripted_app, cors_origins=("https://example.org",))
    response = httpx.options(f"{opened.url}/chat/completions", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "https://example.org"
    response = httpx.options(f"{opened.url}/chat/completions", headers={**preflight, "Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in response.headers


def test_a_client_that_disconnects_stops_its_answer_and_frees_the_model(slow_app, slow, serve) -> None:
    served = serve(slow_app)
    slow.reply(many_sentences(200))  # 10 s at 50 ms a piece, if nobody stopped it
    stream = served.client().chat.completions.create(model="archivist:nodocs", messages=ask("Count"), stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    started = time.monotonic()
    stream.close()  # the client goes away mid-answer
    assert slow.stopped.wait(5), "the model went on writing for nobody"
    assert time.monotonic() - started < 2
    assert slow.made < 60 and slow.ended == ["closed"]
    # The model's slot is free again: the next request is answered at once.
    slow.reply("Next.")
    assert served.client().chat.completions.create(model="archivist:nodocs", messages=ask("Again")).choices


def test_a_non_streaming_client_that_disconnects_stops_its_answer_too(slow_app, slow, serve) -> None:
    served = serve(slow_app)
    slow.reply(many_sentences(200))
    with pytest.raises(openai.APITimeoutError):
        served.client(timeout=0.5).chat.completions.create(model="archivist:nodocs", messages=ask("Count"))
    assert slow.stopped.wait(5)
    assert slow.made < 60


def test_requests_queue_one_at_a_time_and_a_full_queue_is_a_429(slow_app, slow, serve) -> None:
    served = serve(slow_app, max_queue=1)
    for _ in range(2):
        slow.reply(many_sentences(10))  # 0.5 s each
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            completion = served.client().chat.completions.create(model="archivist:nodocs", messages=ask(name))
            results[name] = (time.monotonic(), completion.choices[0].message.content)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            results[name] = exc

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert wait_for(lambda: slow.made > 0)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    gate = served.server.api.state.server.gate
    assert wait_for(lambda: gate.waiting == 1)
    with pytest.raises(openai.RateLimitError, match="busy") as caught:
        served.client().chat.completions.create(model="archivist:nodocs", messages=ask("third"))
    assert caught.value.response.headers["retry-after"] == "5"
    first.join(10)
    second.join(10)
    assert isinstance(results["first"], tuple) and isinstance(results["second"], tuple)
    assert slow.ended == ["stop", "stop"]  # one after the other, never both at once on the model


def test_a_request_that_waits_too_long_is_a_503(slow_app, slow, serve) -> None:
    served = serve(slow_app, queue_timeout_s=0.3)
    slow.reply(many_sentences(30))  # 1.5 s
    first = threading.Thread(target=lambda: served.client().chat.completions.create(
        model="archivist:nodocs", messages=ask("long")))
    first.start()
    assert wait_for(lambda: slow.made > 0)
    with pytest.raises(openai.InternalServerError, match=r"waited 0\.3 s") as caught:
        served.client().chat.completions.create(model="archivist:nodocs", messages=ask("waits"))
    assert caught.value.status_code == 503
    first.join(10)


def test_the_connection_limit_is_uvicorns_503(scripted_app, serve) -> None:
    served = serve(scripted_app, max_connections=1)
    assert served.server._server.config.limit_concurrency == 1
