"""An OpenAI-compatible chat endpoint, so an existing chat UI can use the assistant as a model.

``POST /v1/chat/completions`` with model ``rag`` answers the last user message with the cited
answer (the earlier turns are not used: every answer is quoted from the sources, not from the
conversation). ``stream: true`` sends the same text as server-sent events. The full
``rag ask --json`` object rides along as ``answer``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from rag.assistant import Assistant
from rag.reporting import answer_row, format_references
from rag.types import Answer

MODEL = "rag"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls... are accepted and ignored
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only the text ones carry a question
            return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens...: an extractive answer has no use for them
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def last_question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text()
    raise HTTPException(422, "messages hold no user message to answer")


def chat_text(answer: Answer) -> str:
    """The answer as a chat reply: the quoted text, then one reference line per cited place."""
    if answer.abstained or not answer.citations:
        return answer.text
    return answer.text + "\n\nReferences:\n" + "\n".join(format_references(answer.citations))


def completion(answer: Answer, reply_id: str, created: int) -> dict[str, Any]:
    return {
        "id": reply_id, "object": "chat.completion", "created": created, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": chat_text(answer)},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},  # no tokens are generated
        "answer": answer_row(answer),
    }


def stream_events(answer: Answer, reply_id: str, created: int) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format: a role, the text line by line, a stop, ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for line in chat_text(answer).splitlines(keepends=True):
        yield chunk({"content": line})
    yield chunk({}, "stop", answer=answer_row(answer))
    yield "data: [DONE]\n\n"


def router(assistant: Assistant, run: Callable[..., Awaitable[Any]]) -> APIRouter:
    """The two endpoints over ``assistant``; ``run`` puts blocking work in the query threads."""
    routes = APIRouter(tags=["OpenAI-compatible"])

    @routes.get("/v1/models", summary="The one model this server offers")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "rag"}]}

    @routes.post("/v1/chat/completions", summary="Answer the last user message (OpenAI chat format)",
                 response_model=None)
    async def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        if body.model != MODEL:
            raise HTTPException(404, f"model {body.model!r} does not exist; this server offers {MODEL!r}")
        answer = await run(assistant.ask, last_question(body.messages))
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            return StreamingResponse(stream_events(answer, reply_id, created), media_type="text/event-stream")
        return completion(answer, reply_id, created)

    return routes
