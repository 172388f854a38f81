"""``rag mcp`` driven by the MCP SDK's own stdio client: the tools, their JSON, and the write switch.

The server runs in a subprocess (``tests/keyword_rag.py mcp``: the real command with the keyword
embedder), launched and stopped by the SDK client's context manager.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from conftest import KeywordEmbedder
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import rag.embedding
from rag.cli import main

ENTRY = Path(__file__).resolve().parent / "keyword_rag.py"


@pytest.fixture
def server_env(settings, monkeypatch) -> dict[str, str]:
    """The server's environment: the tiny corpus and a fresh index (the CLI comparison uses the same)."""
    env = {"RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir),
           "RAG_MODEL_NAME": KeywordEmbedder.name, "RAG_CHUNK_SIZE": str(settings.chunk_size),
           "RAG_CHUNK_OVERLAP": str(settings.chunk_overlap)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAG_API_TOKEN", raising=False)
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda _settings: KeywordEmbedder())
    return {**os.environ, **env}


def cli_json(capsys, *argv: str):
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def session(env: dict[str, str], calls):
    """Start ``rag mcp``, run ``calls(client)``, stop the server; return what ``calls`` returned."""
    parameters = StdioServerParameters(command=sys.executable, args=[str(ENTRY), "mcp"], env=env)

    async def run():
        async with Client(parameters, read_timeout_seconds=120) as client:
            return await calls(client)

    return anyio.run(run)


def text_of(result) -> str:
    assert len(result.content) == 1
    return result.content[0].text


def test_the_tools_answer_with_the_cli_json(server_env, capsys):
    question = "How long does a house cat sleep?"

    async def calls(client):
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        search = await client.call_tool("search", {"question": question, "k": 3, "mode": "bm25"})
        ask = await client.call_tool("ask", {"question": question})
        sources = await client.call_tool("list_sources", {})
        return tools, search, ask, sources

    tools, search, ask, sources = session(server_env, calls)
    assert tools == ["ask", "list_sources", "search"]  # no add_source: writes are not enabled
    assert not (search.is_error or ask.is_error or sources.is_error)
    assert json.loads(text_of(search)) == cli_json(capsys, "search", question, "--k", "3", "--mode", "bm25")
    answer = json.loads(text_of(ask))
    assert answer == cli_json(capsys, "ask", question)
    assert answer["citations"][0]["quote"] == "A house cat sleeps about fifteen hours."  # a duration: the figure leads
    assert json.loads(text_of(sources)) == cli_json(capsys, "sources")


def test_a_refused_request_is_a_tool_error_with_one_line(server_env):
    async def calls(client):
        return (await client.call_tool("search", {"question": "cats", "k": 0}),
                await client.call_tool("ask", {"question": "cats", "sources": ["dogs"]}))

    bad_k, bad_source = session(server_env, calls)
    # The SDK names the tool before the message.
    assert bad_k.is_error and text_of(bad_k) == "Error executing tool search: k must be a positive integer, got 0"
    assert bad_source.is_error and text_of(bad_source) == (
        "Error executing tool ask: unknown source id(s) 'dogs'; see `rag sources`")


def test_add_source_exists_only_when_writes_are_enabled(server_env, tmp_path):
    new = tmp_path / "penguins.txt"
    new.write_text("Penguin Notes\n\nEmperor penguins huddle together in the Antarctic winter.\n", encoding="utf-8")

    async def calls(client):
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        added = await client.call_tool("add_source", {"path": str(new), "title": "Penguin Notes",
                                                      "authors": "Ann Smith and Bob Jones"})
        found = await client.call_tool("search", {"question": "emperor penguins huddle", "k": 1})
        return tools, added, found

    tools, added, found = session({**server_env, "RAG_API_TOKEN": "x"}, calls)
    assert tools == ["add_source", "ask", "list_sources", "search"]
    assert json.loads(text_of(added))["authors"] == ["Ann Smith", "Bob Jones"]
    assert json.loads(text_of(found))[0]["source_id"] == "penguins"
