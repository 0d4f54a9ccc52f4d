"""One chat turn of the API: the application's assistant, run on a worker thread.

The assistant's turn is a blocking generator (it screens, retrieves and streams from the
model), so each request runs it on a thread of its own and hands its events to the
server's event loop through an :class:`asyncio.Queue`. A turn waits for the model's slot
(:mod:`archivist.api.gate`) on that thread, and frees it only when the assistant's
generator is closed, so a turn that was stopped never overlaps the next on the model.

What the API asks of the assistant that the window does not:

- the history comes from the request (the OpenAI way: the client sends the conversation
  so far), not from the store;
- nothing is stored unless the caller asks (``"archivist": {"save": true}``): a turn
  through the API is not mixed into the user's conversations otherwise;
- a ``system`` message from the caller replaces the system prompt set in the window.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from archivist.api.gate import QueueTimeout, Ticket
from archivist.errors import ArchivistError
from archivist.types import ChatMessage, GenerationOptions

if TYPE_CHECKING:
    from archivist.application import Application
    from archivist.assistant import Assistant
    from archivist.store.conversations import Conversations

log = logging.getLogger(__name__)

#: The id that answers with the model chosen in the window (or ``archivist models use``).
CHOSEN_MODEL = "archivist"
#: Appended to a model's id: the same model without searching the library.
NO_DOCUMENTS = ":nodocs"
#: The id of the search encoder on ``/v1/embeddings``.
EMBEDDING_MODEL = "archivist-search-encoder"


class UnknownModel(ArchivistError, LookupError):
    """The request names a model this server does not offer."""


@dataclass(frozen=True)
class ApiModel:
    """A model id the API offers, and what it stands for."""

    id: str
    model: str | None  # the application's model id; None: the chosen one
    documents: bool  # answers are grounded in the library
    description: str
    kind: str = "chat"  # or "embedding"


def api_models(app: Application) -> list[ApiModel]:
    """Every id ``/v1/models`` lists: the chosen model and each installed or offered
    model (a remote server's too), each with and without the library, and the encoder."""
    listed: list[ApiModel] = [
        ApiModel(CHOSEN_MODEL, None, True, "the model chosen in Archivist, answering from your documents"),
        ApiModel(CHOSEN_MODEL + NO_DOCUMENTS, None, False, "the model chosen in Archivist, without your documents"),
    ]
    seen = {CHOSEN_MODEL}
    infos = [m.info for m in app.models.installed()] + app.offered_models()
    for info in infos:
        if info.id in seen or info.id.endswith(NO_DOCUMENTS):
            continue
        seen.add(info.id)
        listed.append(ApiModel(info.id, info.id, True, f"{info.name}, answering from your documents"))
        listed.append(ApiModel(info.id + NO_DOCUMENTS, info.id, False, f"{info.name}, without your documents"))
    listed.append(ApiModel(EMBEDDING_MODEL, None, False, "the sentence encoder Archivist searches with",
                           kind="embedding"))
    return listed


def resolve_model(app: Application, requested: str, kind: str = "chat") -> ApiModel:
    for model in api_models(app):
        if model.id == requested and model.kind == kind:
            return model
    raise UnknownModel(f"no {kind} model called {requested!r} here; GET /v1/models lists them")


@dataclass
class TurnRequest:
    """What one chat request asks of the assistant, already checked."""

    question: str
    history: list[ChatMessage] = field(default_factory=list)
    system_prompt: str | None = None
    model: str | None = None
    documents: bool = True
    options: GenerationOptions = field(default_factory=GenerationOptions)
    sources: int | None = None
    save: bool = False
    conversation_id: int | None = None
    collections: frozenset[str] | None = None  # None: all, or the stored conversation's choice


class RequestConversations:
    """The assistant's store for one API turn: the history is the request's, and the
    turn is saved to the user's conversations only when the caller asked (``store``)."""

    def __init__(self, history: Sequence[ChatMessage], store: Callable[[], Conversations] | None,
                 conversation_id: int | None) -> None:
        self._history = list(history)
        self._store = store
        self._conversation_id = conversation_id

    def history(self, conversation_id: int) -> list[ChatMessage]:
        return list(self._history)

    def chosen_collections(self, conversation_id: int) -> frozenset[str] | None:
        """The stored conversation's choice when the turn is added to one; else all."""
        if self._store is None or self._conversation_id is None:
            return None
        return self._store().chosen_collections(self._conversation_id)

    def pinned_files(self, conversation_id: int) -> tuple[str, ...]:
        """None: an API turn answers from the collections. Pinned files are the window's and
        the command line's (a pass over a long file takes minutes, past a client's timeout)."""
        return ()

    def save_turn(self, conversation_id: int | None, question: str, answer: str, **kwargs: Any) -> tuple[int, int]:
        if self._store is None:
            return 0, 0  # not kept: 0 is no conversation's id
        return self._store().save_turn(self._conversation_id, question, answer, **kwargs)


def assistant_for(app: Application, request: TurnRequest) -> Assistant:
    """The application's assistant, reading history and saving as :class:`RequestConversations`
    says, and with the caller's system prompt (when it gave one)."""
    from archivist.store.conversations import Conversations

    assistant = app.assistant()
    store = (lambda: Conversations(app.database)) if request.save else None
    conversations = RequestConversations(request.history, store, request.conversation_id)
    assistant.conversations = lambda: cast("Conversations", conversations)
    if request.system_prompt:
        window_preference = assistant.preference
        system_prompt = request.system_prompt

        def preference(key: str, default: Any) -> Any:
            return system_prompt if key == "system_prompt" else window_preference(key, default)

        assistant.preference = preference
    return assistant


# What a turn's queue carries: ("started", None) once it holds the model's slot,
# ("event", TurnEvent), ("error", exception), then ("end", None) last, always.
Item = tuple[str, Any]


class ClientGone(Exception):
    """The client closed its connection while its request waited or ran."""


class Turn:
    """One chat turn on a worker thread; read its items with :meth:`next`."""

    def __init__(self, app: Application, request: TurnRequest, ticket: Ticket,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.request = request
        self.ticket = ticket
        self.loop = loop
        self.cancel = threading.Event()
        self.finished = threading.Event()
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self._getter: asyncio.Future[Item] | None = None
        self._checked = 0.0  # when the client was last asked whether it is still there
        self._thread = threading.Thread(target=self._run, name="archivist-api-turn", daemon=True)

    def start(self) -> Turn:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the turn: it leaves the queue, or its model stops within a token."""
        self.cancel.set()
        if self._getter is not None and not self._getter.done():
            self._getter.cancel()

    def _put(self, item: Item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the server's loop is closed: nobody reads any more
            self.cancel.set()

    def _run(self) -> None:
        try:
            if not self.ticket.wait(self.cancel):
                return
            self._put(("started", None))
            self._answer()
        except QueueTimeout as exc:
            self._put(("error", exc))
        except Exception as exc:  # noqa: BLE001 - handed to the client as an error, and logged
            if not isinstance(exc, ArchivistError):
                log.exception("an API turn failed")
            self._put(("error", exc))
        finally:
            self.ticket.release()
            self.finished.set()
            self._put(("end", None))

    def _answer(self) -> None:
        request = self.request
        assistant = assistant_for(self.app, request)
        events = assistant.stream(
            request.question,
            conversation_id=0,  # RequestConversations answers with the request's history
            options=request.options,
            cancel=self.cancel,
            use_documents=request.documents,
            sources=request.sources,
            model=request.model,
            collections=request.collections,
        )
        try:
            for event in events:
                if self.cancel.is_set():
                    break
                self._put(("event", event))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # ends the model's stream at once when the client went away

    async def next(self, is_disconnected: Callable[[], Any] | None = None, poll_s: float = 0.25) -> Item:
        """The next item; while waiting, ask ``is_disconnected`` every ``poll_s`` and stop
        the turn (raising :class:`ClientGone`) when the client has gone."""
        loop = asyncio.get_running_loop()
        while True:
            # Asked every poll_s however fast items come: a turn that streams text
            # into a non-streaming response never waits long enough to time out.
            if is_disconnected is not None and loop.time() - self._checked >= poll_s:
                self._checked = loop.time()
                if await is_disconnected():
                    self.stop()
                    raise ClientGone()
            if self._getter is None:
                self._getter = asyncio.ensure_future(self.queue.get())
            done, _ = await asyncio.wait({self._getter}, timeout=poll_s)
            if done:
                getter, self._getter = self._getter, None
                return getter.result()

    async def items(self, is_disconnected: Callable[[], Any] | None = None) -> Any:
        """Items until ``end`` (not included)."""
        while True:
            item = await self.next(is_disconnected)
            if item[0] == "end":
                return
            yield item
