"""The HTTP API (``rag serve``): the application layer as JSON, in the CLI's ``--json`` shapes.

Model work blocks, so every call into the assistant runs in a worker thread, never on the event
loop: queries share ``settings.server_threads`` threads (2 cores), and a corpus change runs in a
thread of its own so searches keep being answered while a build embeds. Writes need the
``RAG_API_TOKEN`` bearer token and are refused outright when the server has none.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, File, Form, Header, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from rag.assistant import Assistant, RequestOptions, SourceMetadata, open_assistant
from rag.conversation import no_model_message
from rag.http_errors import BodyLimit, install_error_handlers, too_large
from rag.reporting import ask_row, change_row, search_rows, source_rows, status_row
from rag.settings import Settings

T = TypeVar("T")
JSON_BODY_LIMIT = 1 << 20  # a question is capped far below this; a chat history may be longer
FORM_OVERHEAD = 64 << 10  # multipart boundaries and metadata fields around an uploaded file
SOURCES_PATH = "/v1/sources"


class QuestionBody(BaseModel):
    """A question and the per-request options (``rag search`` / ``rag ask`` flags)."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="The question, in plain words.")
    k: int | None = Field(None, description="Passages to return or draw on (default 5).")
    mode: str | None = Field(None, description="Retrieval mode: dense, bm25 or hybrid (default hybrid).")
    sources: list[str] = Field(default_factory=list, description="Restrict to these source ids.")

    def options(self) -> RequestOptions:
        return RequestOptions(k=self.k, mode=self.mode, sources=tuple(self.sources))


class AskBody(QuestionBody):
    """A question for ``POST /v1/ask``; ``generate`` is ``rag ask --generate``."""

    generate: bool = Field(False, description="Also write the answer in prose with the server's language model "
                                              "(RAG_LLM_URL); every sentence is checked against the quotes.")


def ask_with_prose(assistant: Assistant, body: AskBody) -> dict[str, Any]:
    """The ``rag ask [--generate] --json`` object; a model that fails leaves the answer with a notice."""
    answer = assistant.ask(body.question, body.options())
    return ask_row(answer, assistant.prose(answer).result() if body.generate else None)


class Workers:
    """Where blocking work runs: queries in a bounded pool, changes one at a time beside it."""

    def __init__(self, threads: int) -> None:
        self.queries = anyio.CapacityLimiter(threads)
        self.changes = anyio.CapacityLimiter(1)

    async def query(self, work: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(work, *args, limiter=self.queries)

    async def change(self, work: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(work, *args, limiter=self.changes)


def write_guard(token: str) -> Callable[..., None]:
    """A dependency refusing writes without the configured bearer token (all writes when none is)."""

    def check(authorization: Annotated[str | None, Header()] = None) -> None:
        if not token:
            raise HTTPException(403, "writes are disabled: start the server with RAG_API_TOKEN set to enable them")
        if not secrets.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "this needs the header 'Authorization: Bearer <RAG_API_TOKEN>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def create_app(assistant: Assistant, token: str = "") -> FastAPI:
    """The API over an opened assistant; ``token`` enables writes for clients that send it."""
    from rag import openai_compat

    app = FastAPI(title="rag", version="1", summary="Verbatim, cited answers from the indexed sources.")
    install_error_handlers(app)
    upload_limit = assistant.settings.max_upload_bytes + FORM_OVERHEAD
    app.add_middleware(BodyLimit, limit_for_path=lambda path: upload_limit if path == SOURCES_PATH else JSON_BODY_LIMIT)
    workers = Workers(assistant.settings.server_threads)
    writer = [Depends(write_guard(token))]

    @app.get("/healthz", summary="Liveness and the served index generation")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", **status_row(await workers.query(assistant.status))}

    @app.post("/v1/search", summary="Ranked passages (rag search --json)")
    async def search(body: QuestionBody) -> list[dict[str, Any]]:
        return search_rows(await workers.query(assistant.search, body.question, body.options()))

    @app.post("/v1/ask", summary="A quoted, cited answer or an abstention (rag ask [--generate] --json)")
    async def ask(body: AskBody) -> dict[str, Any]:
        if body.generate and not assistant.settings.llm_url:  # refused before any model work
            raise HTTPException(503, no_model_message('"generate": true', "the server"))
        return await workers.query(ask_with_prose, assistant, body)

    @app.get(SOURCES_PATH, summary="The indexed sources (rag sources --json)")
    async def list_sources() -> list[dict[str, Any]]:
        return source_rows(await workers.query(assistant.sources))

    @app.post(SOURCES_PATH, status_code=201, dependencies=writer, summary="Add a source file and index it")
    async def add_source(file: Annotated[UploadFile, File(description="A .txt, .md, .html or .pdf file")],
                         id: Annotated[str, Form()] = "", title: Annotated[str, Form()] = "",
                         authors: Annotated[str, Form(description="Separated by ';' or ' and '")] = "",
                         year: Annotated[str, Form()] = "", venue: Annotated[str, Form()] = "",
                         url: Annotated[str, Form()] = "") -> JSONResponse:
        data = await file.read(assistant.settings.max_upload_bytes + 1)
        if len(data) > assistant.settings.max_upload_bytes:
            raise HTTPException(413, too_large(assistant.settings.max_upload_bytes))
        metadata = SourceMetadata.from_fields(id=id, title=title, authors=authors, year=year, venue=venue, url=url)
        change = await workers.change(assistant.add_upload, file.filename or "upload", data, metadata)
        return JSONResponse(change_row(change), status_code=201)

    @app.delete(SOURCES_PATH + "/{source_id}", dependencies=writer, summary="Remove a source and re-index")
    async def remove_source(source_id: str) -> dict[str, Any]:
        return change_row(await workers.change(assistant.remove, source_id))

    app.include_router(openai_compat.router(assistant, workers.query))
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, token: str = "") -> None:
    """Load the model and index once, then serve the API until interrupted."""
    import uvicorn

    assistant, _ = open_assistant(settings)
    assistant.warm_up()
    writes = "enabled (Bearer token)" if token else "disabled (set RAG_API_TOKEN to enable them)"
    print(f"rag: serving {assistant.status().sources} sources on http://{host}:{port} (API docs at /docs); "
          f"writes {writes}", file=sys.stderr, flush=True)
    uvicorn.run(create_app(assistant, token), host=host, port=port, log_level="warning")
