"""The OpenAI wire format: requests as pydantic models, responses as plain dicts.

Requests accept the fields OpenAI clients send and ignore the ones Archivist has no use
for (``seed``, ``user``, ``logprobs``, ...), so editor plugins and notebooks work as they
are. What Archivist adds travels in one extra object named ``archivist``: in a request
(``extra_body={"archivist": {...}}`` with the official client) it asks to keep the turn,
continue a stored conversation or retrieve more passages; in a response it carries the
citations, the sources and what the safety filter did. The official client keeps fields
it does not know, so ``completion.archivist`` (or ``completion.model_extra["archivist"]``)
reads them.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from archivist.assistant import Answer
    from archivist.types import Passage


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        kinds = {p.type for p in self.content} - {"text"}
        if kinds:
            raise ValueError(f"only text content is supported, not {', '.join(sorted(kinds))}")
        return "".join(p.text or "" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ArchivistOptions(BaseModel):
    """The ``archivist`` object of a chat request."""

    model_config = ConfigDict(extra="forbid")
    save: bool = Field(False, description="Keep this turn in the user's conversations.")
    conversation_id: int | None = Field(None, description="With save: add the turn to this stored conversation.")
    sources: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: the window's setting).")
    collections: list[str] | None = Field(
        None, min_length=1,
        description="Answer from these collections only ('library': the user's own; default: all, or, with "
                    "conversation_id, the conversation's choice).")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message]
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice per request.")
    stream_options: StreamOptions | None = None
    archivist: ArchivistOptions | None = None


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)
    k: int = Field(5, ge=1)


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    """An error as OpenAI sends it (the official client raises from its status code and
    shows ``message``)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def passage_dict(passage: Passage) -> dict[str, Any]:
    loc = passage.locator
    return {"path": passage.path, "title": passage.title, "page": loc.page, "section": loc.section,
            "start": loc.start, "end": loc.end, "score": passage.score, "passage": passage.text}


def finish_reason(answer: Answer) -> str:
    """OpenAI's word for how the answer ended: ``content_filter`` when the safety filter
    blocked the question or stopped the answer, ``length`` at max_tokens, else ``stop``."""
    from archivist.types import Action

    if answer.stats.finish_reason == "blocked" or any(v.action is Action.BLOCK for v in answer.verdicts):
        return "content_filter"
    return "length" if answer.stats.finish_reason == "length" else "stop"


def archivist_extra(answer: Answer, saved: bool) -> dict[str, Any]:
    """The ``archivist`` object of a response: citations with their passages, and more."""
    citations = []
    for c in answer.citations:
        source = answer.sources[c.n - 1] if 0 < c.n <= len(answer.sources) else None
        citations.append({
            "n": c.n, "path": c.path, "page": c.page, "start": c.start, "end": c.end,
            "section": source.locator.section if source is not None else None,
            "title": source.title if source is not None else None,
            "passage": source.text if source is not None else c.snippet,
            "score": c.score, "cited": c.cited, "matched": c.matched,
        })
    return {
        "grounded": answer.grounded,
        "citations": citations,
        "notices": list(answer.notices),
        "safety": [v.to_dict() for v in answer.verdicts],
        "model": answer.model,
        "provider": answer.provider,
        "conversation_id": answer.conversation_id if saved else None,
        # Why the answer ended, in Archivist's words ("repetition": archivist.repetition).
        "finish_reason": answer.stats.finish_reason,
    }


def usage(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.stats.prompt_tokens, answer.stats.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(cid: str, model: str, answer: Answer, saved: bool) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.text},
            "finish_reason": finish_reason(answer),
            "logprobs": None,
        }],
        "usage": usage(answer),
        "archivist": archivist_extra(answer, saved),
    }


def chunk(cid: str, model: str, created: int, delta: dict[str, Any] | None = None,
          finish: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}],
    }
    out.update(extra)
    return out


def embedding_item(index: int, vector: Any, encoding: str) -> dict[str, Any]:
    import numpy as np

    row = np.asarray(vector, dtype="<f4")
    value: Any = base64.b64encode(row.tobytes()).decode("ascii") if encoding == "base64" else row.tolist()
    return {"object": "embedding", "index": index, "embedding": value}
