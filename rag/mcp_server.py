"""The MCP server (``rag mcp``): the application layer as tools for agent and chat clients, over stdio.

Tools return the CLI's ``--json`` text, so an agent reads what a script would. ``add_source``
exists only when writes are enabled (``RAG_API_TOKEN`` set in the server's environment, the same
switch as the HTTP API's), since the client that launches the server is then trusted to change
the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from rag.assistant import Assistant, RequestOptions, SourceMetadata, open_assistant
from rag.errors import RagError
from rag.reporting import answer_row, change_row, search_rows, source_rows
from rag.settings import Settings

T = TypeVar("T")
INSTRUCTIONS = ("Answers questions from a fixed set of research sources with verbatim, cited quotes. Use `ask` "
                "for an answer (it abstains when the sources are silent), `search` for ranked passages, "
                "`list_sources` for what is indexed.")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def build_server(assistant: Assistant, writes: bool = False) -> MCPServer:
    """An MCP server over ``assistant``; ``add_source`` is registered only when ``writes``."""
    server = MCPServer("rag", instructions=INSTRUCTIONS)
    limiter = anyio.CapacityLimiter(assistant.settings.server_threads)

    async def run(work: Callable[..., T], *args: Any) -> T:
        try:  # model work blocks: off the event loop, as in the HTTP API
            return await anyio.to_thread.run_sync(work, *args, limiter=limiter)
        except RagError as exc:
            raise ToolError(" ".join(str(exc).split())) from None

    def options(k: int | None, mode: str | None, sources: list[str] | None) -> RequestOptions:
        try:
            return RequestOptions(k=k, mode=mode, sources=tuple(sources or ()))
        except RagError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description="Ranked passages for a question: JSON list of {rank, score, source_id, title, "
                             "section, page, text, start, end, retrievers}.")
    async def search(question: str, k: int | None = None, mode: str | None = None,
                     sources: list[str] | None = None) -> str:
        return _json(search_rows(await run(assistant.search, question, options(k, mode, sources))))

    @server.tool(description="A verbatim, cited answer (or an abstention with its reason): JSON "
                             "{question, answer, abstained, citations: [{n, source_id, title, quote, ...}]}.")
    async def ask(question: str, k: int | None = None, mode: str | None = None,
                  sources: list[str] | None = None) -> str:
        return _json(answer_row(await run(assistant.ask, question, options(k, mode, sources))))

    @server.tool(description="The indexed sources with their citation metadata and passage counts (JSON list).")
    async def list_sources() -> str:
        return _json(source_rows(await run(assistant.sources)))

    if writes:
        @server.tool(description="Add a source file (.txt, .md, .html, .pdf) on this machine to the corpus and "
                                 "index it; authors are separated by ';' or ' and '.")
        async def add_source(path: str, title: str = "", authors: str = "", year: str = "", venue: str = "",
                             url: str = "", id: str = "") -> str:
            metadata = await run(SourceMetadata.from_fields, id, title, authors, year, venue, url)
            return _json(change_row(await run(assistant.add, Path(path), metadata)))

    return server


def run_stdio(settings: Settings, writes: bool = False) -> None:
    """Load the model and index once, then serve MCP on stdin/stdout until the client closes it."""
    assistant, _ = open_assistant(settings)
    assistant.warm_up()  # a broken index fails here, with its reason, not at the first call
    build_server(assistant, writes).run("stdio")
