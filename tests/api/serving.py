"""What the API's tests share: a slow scripted model, a running server and its client."""

from __future__ import annotations

import threading
import time

from archivist import ModelInfo
from archivist.api.server import ApiServer
from archivist.api.settings import ServeSettings
from archivist.testing import ScriptedBackend, ScriptedModel


class SlowModel(ScriptedModel):
    """A scripted model that takes ``backend.delay`` seconds per piece, and records how
    each of its streams ended (``backend.ended``: the finish reason, "closed" when the
    caller closed it) and how many pieces it made."""

    backend: SlowBackend

    def stream(self, prompt, options, stats=None, cancel=None):  # type: ignore[override]
        from archivist.types import GenerationStats

        stats = stats if stats is not None else GenerationStats()
        made = 0
        closed = True
        try:
            for piece in super().stream(prompt, options, stats, cancel):
                time.sleep(self.backend.delay)
                made += 1
                self.backend.made = made
                yield piece
            closed = False
        finally:
            self.backend.ended.append("closed" if closed else stats.finish_reason)
            self.backend.stopped.set()


class SlowBackend(ScriptedBackend):
    def __init__(self, delay: float = 0.05) -> None:
        super().__init__()
        self.delay = delay
        self.made = 0
        self.ended: list[str] = []
        self.stopped = threading.Event()

    def load(self, model: ModelInfo, provider: str | None = None) -> SlowModel:
        loaded = SlowModel(model, self)
        self.loaded.append(loaded)
        return loaded


def many_sentences(n: int) -> list[str]:
    """A reply of ``n`` short sentences, one piece each: the safety filter releases
    text a sentence at a time, so each piece reaches the client soon after it is made."""
    return [f"Sentence {i}. " for i in range(n)]


class Served:
    """A running API server over an application, and a client for it."""

    def __init__(self, app, settings: ServeSettings, new_key: bool = False) -> None:
        self.app = app
        self.server = ApiServer(app, settings, new_key=new_key).start()
        self.url = self.server.url
        self.key = self.server.key

    def client(self, key: str | None = None, **kwargs):
        import openai

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return openai.OpenAI(base_url=self.url, api_key=key or self.key or "not-needed", **kwargs)

    def stop(self) -> None:
        self.server.stop()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
