"""The API as a FastAPI application over one :class:`~archivist.application.Application`.

``GET /v1/models``, ``POST /v1/chat/completions`` (streamed as server-sent events, or
not), ``POST /v1/embeddings`` and ``POST /v1/search``. Errors are OpenAI's error objects
with the status codes the official client turns into its exceptions: 400 bad request,
401 wrong or missing key, 404 unknown model, 413 body too large, 429 queue full, 503 a
wait too long or no model, 500 anything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archivist.api import keys, schemas
from archivist.api.gate import Gate, QueueFull, QueueTimeout
from archivist.api.settings import ServeSettings
from archivist.api.turns import (
    EMBEDDING_MODEL,
    ClientGone,
    Turn,
    TurnRequest,
    UnknownModel,
    api_models,
    resolve_model,
)
from archivist.errors import ArchivistError, ModelLoadError, ModelNotFound
from archivist.types import ChatMessage, GenerationOptions

if TYPE_CHECKING:
    from archivist.application import Application

log = logging.getLogger(__name__)

MODELS_TTL_S = 2.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(schemas.error_body(self.message, self.type, self.code, self.param),
                            status_code=self.status, headers=self.headers)


def api_error(exc: BaseException) -> ApiError:
    """The HTTP error a failed turn or lookup becomes."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (UnknownModel, ModelNotFound)):
        return ApiError(404, str(exc), code="model_not_found", param="model")
    if isinstance(exc, QueueFull):
        return ApiError(429, f"the model is busy: {exc}; try again shortly", "rate_limit_error",
                        "queue_full", headers={"Retry-After": "5"})
    if isinstance(exc, QueueTimeout):
        return ApiError(503, str(exc), "server_error", "queue_timeout", headers={"Retry-After": "30"})
    if isinstance(exc, ModelLoadError):
        return ApiError(503, f"the model could not be loaded: {exc}", "server_error", "model_unavailable")
    if isinstance(exc, ArchivistError):
        return ApiError(500, str(exc), "server_error", "archivist_error")
    return ApiError(500, f"unexpected {type(exc).__name__}: {exc}", "server_error", "internal_error")


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, before anything parses it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = ApiError(413, f"the request body is over the server's limit of {self.limit} bytes",
                           code="request_too_large")
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_big.response()(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await too_big.response()(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class TurnStream(StreamingResponse):
    """A streamed answer that stops its turn however the response ends (a client that
    left before the first byte included: then the body is never iterated)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


class Server:
    """The state one API application shares between requests."""

    def __init__(self, app: Application, settings: ServeSettings, key_digest: str | None) -> None:
        self.app = app
        self.settings = settings
        self.key_digest = key_digest
        self.gate = Gate(settings.max_queue, settings.queue_timeout_s)
        self._encoder: Any = None
        self._encoder_lock = threading.Lock()
        self.turns: set[Turn] = set()  # running now (the server stops them when it stops)
        self._models: tuple[float, list[Any]] | None = None
        self._models_lock = threading.Lock()

    # -- auth ---------------------------------------------------------------------------

    async def check_key(self, request: Request) -> None:
        if not self.settings.needs_key:
            return
        presented = keys.bearer(request.headers.get("authorization"))
        if not keys.matches(presented, self.key_digest):
            word = "a wrong" if presented else "no"
            raise ApiError(401, f"{word} API key: send the key `archivist serve` showed as "
                           "'Authorization: Bearer KEY'", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})

    # -- chat ---------------------------------------------------------------------------

    def turn_request(self, body: schemas.ChatRequest) -> tuple[TurnRequest, str]:
        s = self.settings
        model = self.resolve(body.model)
        if not body.messages:
            raise ApiError(400, "messages is empty: give at least one user message", param="messages")
        if len(body.messages) > s.max_messages:
            raise ApiError(400, f"{len(body.messages)} messages: the most is {s.max_messages}", param="messages")
        system: list[str] = []
        history: list[ChatMessage] = []
        try:
            for message in body.messages:
                text = message.text()
                if message.role in ("system", "developer"):
                    system.append(text)
                elif message.role in ("user", "assistant"):
                    history.append(ChatMessage(message.role, text))  # type: ignore[arg-type]
                else:
                    raise ApiError(400, f"messages with role {message.role!r} are not supported "
                                   "(tools and functions are not)", param="messages")
        except ValueError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        if not history or history[-1].role != "user" or not history[-1].content.strip():
            raise ApiError(400, "the last message must be the user's, with text", param="messages")
        wanted = body.max_completion_tokens or body.max_tokens or s.default_max_tokens
        if wanted > s.max_tokens:
            raise ApiError(400, f"max_tokens {wanted} is over this server's limit of {s.max_tokens}",
                           param="max_tokens", code="max_tokens_too_large")
        options = GenerationOptions(
            max_new_tokens=wanted,
            temperature=body.temperature if body.temperature is not None else 0.0,
            top_p=body.top_p if body.top_p is not None else 1.0,
        )
        extra = body.archivist or schemas.ArchivistOptions.model_validate({})
        if extra.conversation_id is not None and not extra.save:
            raise ApiError(400, "archivist.conversation_id goes with archivist.save", param="archivist")
        collections = None
        if extra.collections is not None:
            try:
                collections = self.app.assistant().check_collections(extra.collections)
            except ArchivistError as exc:
                raise ApiError(400, str(exc), param="archivist.collections") from None
        request = TurnRequest(
            question=history[-1].content,
            history=history[:-1],
            system_prompt="\n\n".join(t for t in system if t.strip()) or None,
            model=model.model,
            documents=model.documents,
            options=options,
            sources=extra.sources,
            save=extra.save,
            conversation_id=extra.conversation_id,
            collections=collections,
        )
        return request, model.id

    async def chat(self, body: schemas.ChatRequest, request: Request) -> Response:
        turn_request, model_id = self.turn_request(body)
        try:
            ticket = self.gate.ticket()
        except QueueFull as exc:
            raise api_error(exc) from None
        turn = Turn(self.app, turn_request, ticket, asyncio.get_running_loop())
        self.turns.add(turn)
        turn.start()
        try:
            first = await self._first_event(turn, request)
        except ClientGone:
            self._forget(turn)
            return Response(status_code=499)  # nobody reads it: the client has gone
        except BaseException:
            turn.stop()
            self._forget(turn)
            raise
        if first[0] == "error":
            self._forget(turn)
            raise api_error(first[1])
        cid = schemas.completion_id()
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return TurnStream(self._stream(turn, first, cid, model_id, usage, turn_request.save),
                              on_close=lambda: self._forget(turn, stop=True))
        try:
            answer = await self._collect(turn, first, request)
        except ClientGone:
            return Response(status_code=499)
        finally:
            self._forget(turn, stop=True)
        return JSONResponse(schemas.completion(cid, model_id, answer, turn_request.save))

    def _forget(self, turn: Turn, stop: bool = False) -> None:
        if stop:
            turn.stop()
        self.turns.discard(turn)

    async def _first_event(self, turn: Turn, request: Request) -> tuple[str, Any]:
        """The turn's first event or error, once it holds the model (the wait for the
        slot and the model's load happen before it): a failure still gets its status."""
        while True:
            item = await turn.next(request.is_disconnected)
            if item[0] in ("event", "error"):
                return item
            if item[0] == "end":  # stopped before it started
                raise ClientGone()

    async def _collect(self, turn: Turn, first: tuple[str, Any], request: Request) -> Any:
        item = first
        while True:
            kind, value = item
            if kind == "error":
                raise api_error(value)
            if kind == "event" and value.kind == "done":
                return value.answer
            if kind == "end":
                raise api_error(RuntimeError("the turn ended without an answer"))
            item = await turn.next(request.is_disconnected)

    async def _stream(self, turn: Turn, first: tuple[str, Any], cid: str, model: str, include_usage: bool,
                      saved: bool) -> AsyncIterator[str]:
        created = int(time.time())
        yield sse(schemas.chunk(cid, model, created, {"role": "assistant", "content": ""}))
        item = first
        try:
            while item[0] != "end":
                kind, value = item
                if kind == "error":
                    error = api_error(value)
                    yield sse(schemas.error_body(error.message, error.type, error.code))
                    break
                if kind == "event":
                    if value.kind == "text" and value.text:
                        yield sse(schemas.chunk(cid, model, created, {"content": value.text}))
                    elif value.kind == "sources":
                        sources = [schemas.passage_dict(p) for p in value.sources]
                        yield sse(schemas.chunk(cid, model, created, archivist={"sources": sources}))
                    elif value.kind == "notice":
                        verdict = value.verdict.to_dict() if value.verdict is not None else None
                        yield sse(schemas.chunk(cid, model, created,
                                                archivist={"notice": value.text, "safety": verdict}))
                    elif value.kind == "done":
                        answer = value.answer
                        yield sse(schemas.chunk(cid, model, created, finish=schemas.finish_reason(answer),
                                                archivist=schemas.archivist_extra(answer, saved)))
                        if include_usage:
                            final = schemas.chunk(cid, model, created, usage=schemas.usage(answer))
                            final["choices"] = []
                            yield sse(final)
                        break
                item = await turn.next()
            yield sse("[DONE]")
        finally:
            turn.stop()  # a client that went away stops the model within a token

    # -- embeddings and search ------------------------------------------------------------

    def encoder(self) -> Any:
        with self._encoder_lock:
            if self._encoder is None:
                from archivist_models.embedder import EmbedderMissing, ensure_embedder
                from archivist_models.embeddings import Embedder

                try:
                    folder = ensure_embedder(self.app.paths.models)
                except EmbedderMissing as exc:
                    raise ApiError(503, str(exc), "server_error", "encoder_missing") from None
                self._encoder = Embedder(folder)
            return self._encoder

    def embed(self, texts: list[str]) -> tuple[list[Any], int]:
        encoder = self.encoder()
        with self._encoder_lock:  # one batch at a time: the tokenizer's padding is shared state
            vectors = encoder.embed(texts)
            tokens = sum(encoder.count_tokens(t) + 2 for t in texts)  # [CLS] and [SEP]
        return list(vectors), tokens

    async def embeddings(self, body: schemas.EmbeddingRequest) -> dict[str, Any]:
        s = self.settings
        self.resolve(body.model, kind="embedding")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts or len(texts) > s.max_inputs:
            raise ApiError(400, f"input must hold 1 to {s.max_inputs} texts", param="input")
        for text in texts:
            if not text.strip():
                raise ApiError(400, "input holds an empty text", param="input")
            if len(text) > s.max_input_chars:
                raise ApiError(400, f"an input text is over {s.max_input_chars} characters", param="input")
        vectors, tokens = await anyio.to_thread.run_sync(self.embed, texts)
        if body.dimensions is not None and vectors and body.dimensions != len(vectors[0]):
            raise ApiError(400, f"this encoder makes {len(vectors[0])} dimensions, not {body.dimensions}",
                           param="dimensions")
        return {
            "object": "list",
            "data": [schemas.embedding_item(i, v, body.encoding_format) for i, v in enumerate(vectors)],
            "model": EMBEDDING_MODEL,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def search(self, body: schemas.SearchRequest) -> dict[str, Any]:
        if body.k > self.settings.max_search_k:
            raise ApiError(400, f"k is over this server's limit of {self.settings.max_search_k}", param="k")
        if len(body.query) > self.settings.max_input_chars:
            raise ApiError(400, f"the query is over {self.settings.max_input_chars} characters", param="query")
        assistant = self.app.assistant()
        passages, any_documents = await anyio.to_thread.run_sync(assistant.retrieve, body.query, body.k)
        return {"object": "list", "query": body.query, "documents": any_documents,
                "data": [schemas.passage_dict(p) for p in passages]}

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self._model_dict(m) for m in api_models(self.app)]}

    def resolve(self, requested: str, kind: str = "chat") -> Any:
        """``resolve_model``, from a listing at most :data:`MODELS_TTL_S` old (listing
        reads the models folder, a setting and every backend's offer: a millisecond a
        request otherwise)."""
        now = time.monotonic()
        with self._models_lock:
            if self._models is None or now - self._models[0] > MODELS_TTL_S:
                self._models = (now, api_models(self.app))
            listed = self._models[1]
        for model in listed:
            if model.id == requested and model.kind == kind:
                return model
        return resolve_model(self.app, requested, kind)  # not listed a moment ago: look again

    def model(self, model_id: str) -> dict[str, Any]:
        for m in api_models(self.app):
            if m.id == model_id:
                return self._model_dict(m)
        raise ApiError(404, f"no model called {model_id!r} here; GET /v1/models lists them", code="model_not_found")

    @staticmethod
    def _model_dict(m: Any) -> dict[str, Any]:
        return {"id": m.id, "object": "model", "created": 0, "owned_by": "archivist",
                "archivist": {"kind": m.kind, "documents": m.documents, "description": m.description}}

    def stop_turns(self) -> None:
        for turn in list(self.turns):
            turn.stop()


def create_app(app: Application, settings: ServeSettings, key_digest: str | None = None) -> FastAPI:
    """The API over ``app``. ``key_digest``: the SHA-256 of the key every request must
    bring when ``settings.needs_key`` (:mod:`archivist.api.keys`)."""
    if settings.needs_key and not key_digest:
        raise ArchivistError("this address needs an API key, and none is set: "
                             "`archivist serve --new-key` makes one")
    server = Server(app, settings, key_digest)
    api = FastAPI(title="Archivist", version=_version(), docs_url=None, redoc_url=None,
                  description="An OpenAI-compatible API over your own documents (see docs/api.md).")
    api.state.server = server

    @api.exception_handler(ApiError)
    async def on_api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @api.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg", "invalid"))
        return ApiError(400, message, param=where or None).response()

    @api.exception_handler(Exception)
    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("the API failed", exc_info=exc)
        return api_error(exc).response()

    router = APIRouter(prefix="/v1", dependencies=[Depends(server.check_key)])

    @router.get("/models")
    async def list_models() -> dict[str, Any]:
        return await anyio.to_thread.run_sync(server.models)

    @router.get("/models/{model_id:path}")
    async def get_model(model_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(server.model, model_id)

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(body: schemas.ChatRequest, request: Request) -> Response:
        try:
            return await server.chat(body, request)
        except ApiError:
            raise
        except (ArchivistError, QueueFull, QueueTimeout) as exc:
            raise api_error(exc) from None

    @router.post("/embeddings")
    async def embeddings(body: schemas.EmbeddingRequest) -> dict[str, Any]:
        try:
            return await server.embeddings(body)
        except ApiError:
            raise
        except ArchivistError as exc:
            raise api_error(exc) from None

    @router.post("/search")
    async def search(body: schemas.SearchRequest) -> dict[str, Any]:
        return await server.search(body)

    api.include_router(router)
    api.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        api.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    return api


def _version() -> str:
    from archivist import __version__

    return __version__
