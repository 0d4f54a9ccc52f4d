"""Talking to an OpenAI-compatible server with httpx: listing models, streaming a chat.

Every failure becomes an :class:`RemoteError` whose message says what happened and what
to do, in the words a user of the CLI or the window reads: the server is down, the key is
wrong, the model is not there, the prompt is too long, the server went silent. Connection
errors (and 429/502/503 answers) before the first token are retried with backoff; a
stream that breaks after tokens arrived is not (the answer would repeat itself).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archivist import ArchivistError

RETRYABLE_STATUS = {429, 502, 503, 504}


class RemoteError(ArchivistError):
    """A model server could not answer; ``status`` is its HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 300.0
    retries: int = 3
    backoff: float = 0.5  # seconds before the second attempt; doubled each time


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = ""


def _message(response: Any) -> str:
    """The error message a server put in its body (OpenAI's shape, or text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    if isinstance(error, str):
        return error[:300]
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:300]
    return str(body)[:300]


class Stopped(Exception):
    """The user stopped the answer before the server answered."""


def _unless_stopped(send: Any, cancel: threading.Event) -> Any:
    """``send()`` on a helper thread, given up when ``cancel`` is set first: a server may
    keep its headers back until its model's first token (another Archivist does), and
    Stop must not wait for that. What the abandoned call gets is closed when it comes."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["response"] = send()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            box["error"] = exc

    helper = threading.Thread(target=run, name="archivist-remote-send", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.05)
        if cancel.is_set() and helper.is_alive():
            def reap() -> None:
                helper.join()
                if "response" in box:
                    box["response"].close()

            threading.Thread(target=reap, name="archivist-remote-reap", daemon=True).start()
            raise Stopped()
    if "error" in box:
        raise box["error"]
    return box["response"]


def _shut(response: Any) -> None:
    """Shut the socket under a streaming response down (from any thread)."""
    import socket

    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _Unfinished(Exception):
    """A stream that closed before ``[DONE]`` and without a finish reason."""

    def __init__(self, pieces: int) -> None:
        super().__init__(pieces)
        self.pieces = pieces


def _context_error(message: str) -> bool:
    lowered = message.lower()
    return any(w in lowered for w in ("context length", "context_length", "context size", "maximum context",
                                      "too many tokens", "exceeds the", "prompt is too long"))


class Client:
    """One server: its name (for messages), base URL (ending in /v1), key and timeouts."""

    def __init__(self, name: str, url: str, key: str | None = None, timeouts: Timeouts | None = None) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.key = key
        self.timeouts = timeouts or Timeouts()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def _timeout(self, read: float | None = None) -> Any:
        import httpx

        t = self.timeouts
        return httpx.Timeout(connect=t.connect, read=read if read is not None else t.read, write=30.0, pool=t.connect)

    def _status_error(self, response: Any, model: str | None = None) -> RemoteError:
        status = response.status_code
        message = _message(response)
        where = f"the model server {self.name} ({self.url})"
        if status in (401, 403):
            return RemoteError(f"{where} refused the key (HTTP {status}: {message}): give the right one with "
                               f"`archivist models add-server {self.name} {self.url} --key-prompt`", status)
        if status == 404 and model is not None:
            return RemoteError(f"{where} has no model {model!r} (HTTP 404: {message}); "
                               "`archivist doctor` lists the models it has", status)
        if status == 404:
            return RemoteError(f"{where} has no OpenAI API at this address (HTTP 404): check the URL "
                               "(it usually ends in /v1)", status)
        if status in (400, 413, 422) and _context_error(message):
            return RemoteError(f"the prompt is too long for {where} ({message}): lower the context budget in "
                               "Settings or ask with fewer sources (-k), or add the server again with its real "
                               "context size (--context N)", status)
        if status == 429:
            return RemoteError(f"{where} is busy (HTTP 429: {message}); try again shortly", status)
        return RemoteError(f"{where} answered HTTP {status}: {message}", status)

    def _connection_error(self, exc: BaseException) -> RemoteError:
        import httpx

        where = f"the model server {self.name} at {self.url}"
        if isinstance(exc, httpx.ConnectTimeout):
            return RemoteError(f"cannot reach {where}: no answer within {self.timeouts.connect:g} s. Is it "
                               "running, and is the address right? (`archivist doctor` checks the servers)")
        if isinstance(exc, httpx.ReadTimeout):
            return RemoteError(f"{where} sent nothing for {self.timeouts.read:g} s, so Archivist stopped "
                               "waiting ([remote] read_timeout in config.toml changes this)")
        if isinstance(exc, httpx.ConnectError):
            return RemoteError(f"cannot reach {where} ({exc}). Is it running, and is the address right? "
                               "(`archivist doctor` checks the servers)")
        return RemoteError(f"the connection to {where} failed ({type(exc).__name__}: {exc})")

    def _retrying(self, attempt: Any, cancel: threading.Event | None = None) -> Any:
        """``attempt()`` with retries on connection errors and busy answers, backing off."""
        import httpx

        delay = self.timeouts.backoff
        for n in range(max(1, self.timeouts.retries)):
            last = n == max(1, self.timeouts.retries) - 1
            try:
                return attempt()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                if last:
                    raise self._connection_error(exc) from None
            except httpx.TimeoutException as exc:
                raise self._connection_error(exc) from None
            except httpx.HTTPError as exc:
                raise self._connection_error(exc) from None
            except RemoteError as exc:
                if exc.status not in RETRYABLE_STATUS or last:
                    raise
            if cancel is not None:
                if cancel.wait(delay):
                    raise RemoteError("stopped")
            else:
                time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def list_models(self, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """``GET /models``: the server's models as it describes them."""
        import httpx

        def attempt() -> list[dict[str, Any]]:
            with httpx.Client(timeout=self._timeout(timeout_s or 15.0)) as http:
                response = http.get(f"{self.url}/models", headers=self._headers())
            if response.status_code >= 400:
                raise self._status_error(response)
            try:
                data = response.json().get("data", [])
            except (ValueError, AttributeError):
                raise RemoteError(f"the model server {self.name} ({self.url}) did not answer /models with "
                                  "OpenAI's JSON: is this the API's address (usually ending in /v1)?") from None
            return [m for m in data if isinstance(m, dict) and m.get("id")]

        return self._retrying(attempt)

    def stream_chat(self, model: str, messages: list[dict[str, str]], *, max_tokens: int, temperature: float,
                    top_p: float, usage: Usage, cancel: threading.Event | None = None) -> Iterator[str]:
        """``POST /chat/completions`` with ``stream: true``: the answer's text as it comes.

        Stops when ``cancel`` is set, also while the server is still reading the prompt
        (a watcher closes the connection, so the server stops generating too), and when
        the caller closes this generator.
        """
        import httpx

        payload: dict[str, Any] = {
            "model": model, "messages": messages, "stream": True, "max_tokens": max_tokens,
            "temperature": temperature, "top_p": top_p, "stream_options": {"include_usage": True},
        }
        http = httpx.Client(timeout=self._timeout())
        done = threading.Event()
        opened: list[Any] = []
        if cancel is not None:
            def watch() -> None:
                # Stop means now, also while a big model reads the prompt and sends
                # nothing: shutting the socket down wakes the read blocked on it here,
                # and tells the server (which stops generating) that nobody listens.
                while not done.wait(0.05):
                    if cancel.is_set():
                        for response in opened:
                            _shut(response)
                        return

            threading.Thread(target=watch, name="archivist-remote-stop", daemon=True).start()

        def send() -> Any:
            request = http.build_request("POST", f"{self.url}/chat/completions", json=payload,
                                         headers={**self._headers(), "Accept": "text/event-stream"})
            response = http.send(request, stream=True)
            if response.status_code >= 400:
                response.read()
                response.close()
                raise self._status_error(response, model)
            opened.append(response)
            return response

        def open_stream() -> Any:
            return send() if cancel is None else _unless_stopped(send, cancel)

        try:
            try:
                response = self._retrying(open_stream, cancel)
            except Exception:
                if cancel is not None and cancel.is_set():  # stopped before the server answered
                    usage.finish_reason = "cancelled"
                    return
                raise
            try:
                yield from self._read_events(response, usage, cancel)
            except _Unfinished as unfinished:
                if unfinished.pieces:
                    raise RemoteError(f"the model server {self.name} ({self.url}) closed the answer after "
                                      f"{unfinished.pieces} pieces without finishing it or saying why: what "
                                      "came is incomplete (the server's log says why)") from None
                raise self._why_nothing(model, payload) from None
            except (httpx.HTTPError, RuntimeError) as exc:
                if cancel is not None and cancel.is_set():
                    usage.finish_reason = "cancelled"
                    return
                if not isinstance(exc, httpx.HTTPError):
                    raise
                raise self._connection_error(exc) from None
            finally:
                response.close()
        finally:
            done.set()
            http.close()

    def _why_nothing(self, model: str, payload: dict[str, Any]) -> RemoteError:
        """The reason a server closed a stream at once, without a word or an error.

        llama.cpp's Python server (llama-cpp-python 0.3) answers a streamed request whose
        prompt is over its context with ``200 OK`` and an empty stream; the same request
        without streaming gets the OpenAI error (``context_length_exceeded``). So it is
        asked once more that way, for one token, and its error is told as any other.
        """
        import httpx

        where = f"the model server {self.name} ({self.url})"
        probe = {**payload, "stream": False, "max_tokens": 1}
        probe.pop("stream_options", None)
        try:
            with httpx.Client(timeout=self._timeout()) as http:
                response = http.post(f"{self.url}/chat/completions", json=probe, headers=self._headers())
        except httpx.HTTPError as exc:
            return self._connection_error(exc)
        if response.status_code >= 400:
            return self._status_error(response, model)
        return RemoteError(f"{where} closed the answer at once, without a word or saying why (its log may say)")

    def _read_events(self, response: Any, usage: Usage, cancel: threading.Event | None) -> Iterator[str]:
        """The text of each event; a stream that ends before ``[DONE]`` and with no
        finish reason was cut short, and is raised as :class:`_Unfinished`."""
        pieces = 0
        for line in response.iter_lines():
            if cancel is not None and cancel.is_set():
                usage.finish_reason = "cancelled"
                return
            if not line.startswith("data:"):
                continue  # comments (": ping"), event names, blank lines
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError:
                raise RemoteError(f"the model server {self.name} sent something that is not JSON: {data[:80]!r}") \
                    from None
            if not isinstance(event, dict):
                continue
            if event.get("error"):
                error = event["error"]
                message = error.get("message", error) if isinstance(error, dict) else error
                raise RemoteError(f"the model server {self.name} stopped with an error: {message}")
            if isinstance(event.get("usage"), dict):
                usage.prompt_tokens = event["usage"].get("prompt_tokens", usage.prompt_tokens)
                usage.completion_tokens = event["usage"].get("completion_tokens", usage.completion_tokens)
            for choice in event.get("choices") or []:
                if choice.get("finish_reason"):
                    usage.finish_reason = str(choice["finish_reason"])
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces += 1
                    yield text
        if cancel is not None and cancel.is_set():
            usage.finish_reason = "cancelled"
        elif not usage.finish_reason:  # (a finish reason without [DONE] is a finished answer)
            raise _Unfinished(pieces)
