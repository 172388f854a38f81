"""A streaming client for OpenAI-compatible chat-completions servers (Ollama, llama.cpp, vLLM, LM Studio).

httpx rather than the ``openai`` package: one small dependency, and the timeouts are ours to bound
(connect, silence between two streamed pieces, whole reply) with no hidden retries. Every failure
becomes a :class:`GenerationError` with a one-line reason, so callers can fall back to the quotes.
httpx (the ``llm`` extra) is imported only when a model is called; the default path never loads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag.errors import RagError
from rag.settings import Settings

if TYPE_CHECKING:
    import httpx

_MAX_ERROR_CHARS = 200  # of a server's error body quoted back to the user


class GenerationError(RagError):
    """The language model gave no usable reply (down, slow, HTTP error, empty or malformed)."""


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class LLMConfig:
    """Where the model is and how long we wait for it."""

    url: str  # base URL, e.g. http://127.0.0.1:11434/v1; "/chat/completions" is appended
    model: str
    api_key: str = field(default="", repr=False)
    connect_timeout: float = 3.0  # a server that is down is noticed at once
    read_timeout: float = 30.0  # longest silence between two streamed pieces
    total_timeout: float = 60.0  # the whole reply
    max_tokens: int = 256
    temperature: float = 0.0  # reproducible replies; the checker judges them, not taste

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/chat/completions"

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig | None:
        """The configured generator, or None when ``RAG_LLM_URL`` is unset."""
        if not settings.llm_url:
            return None
        return cls(url=settings.llm_url, model=settings.llm_model or "default", api_key=settings.llm_api_key,
                   read_timeout=min(30.0, settings.llm_timeout), total_timeout=settings.llm_timeout,
                   max_tokens=settings.llm_max_tokens)


def _request_body(config: LLMConfig, messages: Sequence[Message], stream: bool) -> dict[str, Any]:
    return {"model": config.model, "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": stream, "max_tokens": config.max_tokens, "temperature": config.temperature}


def _headers(config: LLMConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def _delta(event: Any, where: str) -> str:
    """The text piece of one streamed chunk (``choices[0].delta.content``); may be empty."""
    try:
        choice = event["choices"][0] if event["choices"] else {}
        piece = (choice.get("delta") or choice.get("message") or {}).get("content") or ""
    except (KeyError, TypeError, AttributeError, IndexError):
        raise GenerationError(f"the language model sent a malformed {where} (no choices[0].delta)") from None
    if not isinstance(piece, str):
        raise GenerationError(f"the language model sent a malformed {where} (content is not text)")
    return piece


def _sse_pieces(lines: Iterator[str], deadline: float, config: LLMConfig) -> Iterator[str]:
    """Text pieces of a server-sent-events stream, up to ``data: [DONE]``."""
    for line in lines:
        if time.monotonic() > deadline:
            raise GenerationError(f"the language model took longer than {config.total_timeout:g} s")
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alive pings
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise GenerationError("the language model sent a malformed stream event (not JSON)") from None
        if isinstance(event, dict) and "error" in event:
            raise GenerationError(f"the language model reported an error: {str(event['error'])[:_MAX_ERROR_CHARS]}")
        yield _delta(event, "stream event")


def _pieces(response: httpx.Response, deadline: float, config: LLMConfig) -> Iterator[str]:
    if response.status_code >= 400:
        body = response.read().decode("utf-8", "replace")
        raise GenerationError(f"the language model server answered HTTP {response.status_code}: "
                              f"{' '.join(body.split())[:_MAX_ERROR_CHARS] or 'no message'}")
    if response.headers.get("content-type", "").startswith("application/json"):
        # A server that ignores "stream": true answers with one whole completion.
        try:
            event = json.loads(response.read())
        except ValueError:
            raise GenerationError("the language model sent a malformed reply (not JSON)") from None
        yield _delta(event, "reply")
        return
    yield from _sse_pieces(response.iter_lines(), deadline, config)


def stream_chat(config: LLMConfig, messages: Sequence[Message]) -> Iterator[str]:
    """Yield the reply's text as it streams in; raise :class:`GenerationError` on any failure.

    Never hangs: connecting, each silence and the whole reply are bounded by ``config``.
    """
    import httpx  # the llm extra; imported only when a model is actually called

    deadline = time.monotonic() + config.total_timeout
    timeout = httpx.Timeout(connect=config.connect_timeout, read=config.read_timeout,
                            write=config.connect_timeout, pool=config.connect_timeout)
    received = False
    try:
        with httpx.Client(timeout=timeout) as client, client.stream(
            "POST", config.endpoint, json=_request_body(config, messages, stream=True), headers=_headers(config)
        ) as response:
            for piece in _pieces(response, deadline, config):
                if piece:
                    received = True
                    yield piece
    except httpx.ConnectError:
        raise GenerationError(f"cannot reach the language model at {config.url} (is the server running?)") from None
    except httpx.TimeoutException:
        raise GenerationError(f"the language model at {config.url} did not answer within "
                              f"{config.read_timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise GenerationError(f"the language model connection failed: {exc.__class__.__name__}") from None
    if not received:
        raise GenerationError("the language model sent an empty reply")


def complete_chat(config: LLMConfig, messages: Sequence[Message]) -> str:
    """The whole reply as one string (for short jobs such as rewriting a follow-up question)."""
    return "".join(stream_chat(config, messages))
