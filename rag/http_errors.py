"""How the HTTP API fails: one-line JSON ``{"error": ...}`` with a status that says whose fault it is.

No stack trace ever reaches a client; unexpected failures are logged here and answered with 500.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import (
    IndexBusyError,
    IndexStateError,
    QuestionError,
    RagError,
    SettingsError,
    SourceError,
    UnknownSourceError,
)

log = logging.getLogger("rag.http")

# First match wins, so subclasses come before their bases.
STATUS_OF: tuple[tuple[type[RagError], int], ...] = (
    (UnknownSourceError, 404),
    (IndexBusyError, 409),
    (QuestionError, 422),
    (SettingsError, 422),
    (SourceError, 422),
    (IndexStateError, 503),
    (RagError, 400),
)


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def _rag_error(_request: Request, exc: RagError) -> JSONResponse:
    status = next(code for kind, code in STATUS_OF if isinstance(exc, kind))
    return error_response(status, str(exc))


def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "the request body is not valid JSON")
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return error_response(422, f"{where}: {first.get('msg', 'invalid value')}")


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("request failed", exc_info=exc)
    return error_response(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuse a request body over ``limit(path)`` bytes with 413, before or while it is read.

    A declared ``Content-Length`` is refused before a byte is read; a chunked body is counted as
    it arrives, so a client cannot make the server spool an unbounded upload.
    """

    def __init__(self, app: ASGIApp, limit_for_path) -> None:
        self.app = app
        self.limit_for_path = limit_for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for_path(scope["path"])
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, too_large(limit))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, counted, send)


def too_large(limit: int) -> str:
    return f"the request body is larger than the {limit:,} bytes this endpoint accepts"


async def _send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": one_line(message)}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
